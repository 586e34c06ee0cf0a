"""The hooks of the Example Ads plugin (entry point ``example``).

Hookimpls only, and cheap: each imports what it needs when called, so ``cmis --help`` and
``cmis plugins list`` never import the sandbox (starlette) or the HTTP machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmis_core import hookimpl

if TYPE_CHECKING:
    from cmis_core import AuthProvider, Platform, Sandbox, SandboxOptions, Stream, WebhookVerifier


@hookimpl
def cmis_platforms() -> list[Platform]:
    from cmis_example.client import platform

    return [platform()]


@hookimpl
def cmis_auth_providers() -> list[AuthProvider]:
    from cmis_example.auth import ExampleAuth

    return [ExampleAuth()]


@hookimpl
def cmis_webhook_verifiers() -> list[WebhookVerifier]:
    from cmis_example.webhooks import ExampleWebhooks

    return [ExampleWebhooks()]


@hookimpl
def cmis_streams() -> list[Stream]:
    from cmis_example.streams import streams

    return streams()


def _build_sandbox(options: SandboxOptions) -> Any:
    from cmis_example.sandbox import build

    return build(options)


def _sandbox_env(base_url: str) -> dict[str, str]:
    from cmis_example.sandbox import env

    return env(base_url)


@hookimpl
def cmis_sandboxes() -> list[Sandbox]:
    from cmis_core import Sandbox

    return [
        Sandbox(
            platform="example",
            app=_build_sandbox,
            env=_sandbox_env,
            description="Example Ads: OAuth 2 + PKCE, cursor paging, signed webhooks",
        )
    ]
