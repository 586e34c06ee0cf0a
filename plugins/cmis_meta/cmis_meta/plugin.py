"""The hooks of the Meta plugin (entry point ``meta``).

Hookimpls only, and cheap: each imports what it needs when called, so ``cmis --help`` and
``cmis plugins list`` never import the sandbox (starlette) or the HTTP machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmis_core import hookimpl

if TYPE_CHECKING:
    import click

    from cmis_core import AuthProvider, Platform, Sandbox, SandboxOptions, Stream, WebhookVerifier


@hookimpl
def cmis_platforms() -> list[Platform]:
    from cmis_meta.client import platform

    return [platform()]


@hookimpl
def cmis_auth_providers() -> list[AuthProvider]:
    from cmis_meta.auth import MetaAuthProvider

    return [MetaAuthProvider()]


@hookimpl
def cmis_webhook_verifiers() -> list[WebhookVerifier]:
    from cmis_meta.webhooks import MetaWebhooks

    return [MetaWebhooks()]


@hookimpl
def cmis_streams() -> list[Stream]:
    from cmis_meta.streams import streams

    return streams()


def _build_sandbox(options: SandboxOptions) -> Any:
    from cmis_meta.sandbox import build

    return build(options)


def _sandbox_env(base_url: str) -> dict[str, str]:
    from cmis_meta.sandbox import env

    return env(base_url)


@hookimpl
def cmis_sandboxes() -> list[Sandbox]:
    from cmis_core import Sandbox

    return [
        Sandbox(
            platform="meta",
            app=_build_sandbox,
            env=_sandbox_env,
            description="Meta Graph API: Facebook Login, report runs, usage, signed webhooks",
        )
    ]


@hookimpl
def cmis_register_commands(cli: click.Group) -> None:
    from cmis_meta.commands import meta_group

    cli.add_command(meta_group)
