"""The hooks of the Google Ads plugin (entry point ``google``).

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
    from cmis_google.client import platform

    return [platform()]


@hookimpl
def cmis_auth_providers() -> list[AuthProvider]:
    from cmis_google.auth import GoogleAuth

    return [GoogleAuth()]


@hookimpl
def cmis_webhook_verifiers() -> list[WebhookVerifier]:
    from cmis_google.webhooks import GoogleLeadWebhooks

    return [GoogleLeadWebhooks()]


@hookimpl
def cmis_streams() -> list[Stream]:
    from cmis_google.lead_forms import LeadFormsStream
    from cmis_google.streams import streams

    return [*streams(), LeadFormsStream()]


def _build_sandbox(options: SandboxOptions) -> Any:
    from cmis_google.sandbox import build

    return build(options)


def _sandbox_env(base_url: str) -> dict[str, str]:
    from cmis_google.sandbox import env

    return env(base_url)


@hookimpl
def cmis_sandboxes() -> list[Sandbox]:
    from cmis_core import Sandbox

    return [
        Sandbox(
            platform="google",
            app=_build_sandbox,
            env=_sandbox_env,
            description="Google Ads: OAuth 2 offline + PKCE, manager hierarchies, GAQL, lead forms",
        )
    ]
