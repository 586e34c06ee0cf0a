"""The contract between cmis and its plugins. Public API: changes are additive only.

A platform package declares, in its ``pyproject.toml``::

    [project.entry-points.cmis]
    meta = "cmis_meta.plugin"

and implements some of these hooks in that module with ``@hookimpl``. The entry point's
name is the platform slug. Capability hooks take no arguments and return iterables of
records; the core indexes them by platform and calls the returned objects directly, so
pluggy is only used to discover them. Observer hooks may be implemented by any number of
plugins; they run after the change is committed, at least once per ``event.event_id``, and
an observer's exception is logged, never raised.

Rules for implementers: never give a hookimpl argument a default (pluggy would never pass
it); import heavy modules inside the hook, not at the top of ``plugin.py``; do no I/O at
import time.

Lifecycle::

    entry points scanned -> each plugin module imported (failures recorded, others go on)
    -> capability hooks called once per process -> records validated and indexed
    -> conflicts disable the platform -> commands, service and runner use the registry

This module imports only pluggy (types are for type checkers only).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cmis_core.markers import hookspec

if TYPE_CHECKING:
    import click

    from cmis_core.contract import AuthProvider, Sandbox, Stream, WebhookVerifier
    from cmis_core.types import (
        IntegrationEvent,
        Platform,
        SyncFinishedEvent,
        WebhookProcessedEvent,
    )

# --------------------------------------------------------------------------- capabilities


@hookspec
def cmis_platforms() -> Iterable[Platform]:
    """Describe the platforms this plugin provides.

    A platform's ``name`` is its slug (``meta``); exactly one installed distribution may
    provide it. Every other capability record for that platform must come from the same
    distribution.

    :return: :class:`cmis_core.types.Platform` records.

    Example::

        @hookimpl
        def cmis_platforms():
            from cmis_core import Capability, Platform
            return [Platform(name="echo", display_name="Echo Ads", api_version="v1",
                             base_url="https://api.echo.example",
                             capabilities={Capability.OAUTH2, Capability.SYNC})]

    .. versionadded:: 0.1
    """


@hookspec
def cmis_auth_providers() -> Iterable[AuthProvider]:
    """Offer an auth provider per platform: authorization URL, exchange, refresh, revoke.

    Most plugins subclass ``cmis_core.auth.OAuth2Provider`` or ``OAuth1Provider`` and
    override only what their platform does differently.

    :return: objects satisfying :class:`cmis_core.contract.AuthProvider`.

    Example::

        @hookimpl
        def cmis_auth_providers():
            from cmis_echo.auth import EchoAuth
            return [EchoAuth()]

    .. versionadded:: 0.1
    """


@hookspec
def cmis_webhook_verifiers() -> Iterable[WebhookVerifier]:
    """Offer a webhook verifier per platform: handshake, signature check, parsing.

    :return: objects satisfying :class:`cmis_core.contract.WebhookVerifier`.

    Example::

        @hookimpl
        def cmis_webhook_verifiers():
            from cmis_echo.webhooks import EchoWebhooks
            return [EchoWebhooks()]

    .. versionadded:: 0.1
    """


@hookspec
def cmis_streams() -> Iterable[Stream]:
    """Offer the streams a platform syncs (accounts, campaigns, ..., daily metrics, leads).

    :return: objects satisfying :class:`cmis_core.contract.Stream`, several per platform,
        stream names unique within a platform.

    Example::

        @hookimpl
        def cmis_streams():
            from cmis_echo.streams import STREAMS
            return STREAMS

    .. versionadded:: 0.1
    """


@hookspec
def cmis_sandboxes() -> Iterable[Sandbox]:
    """Offer a sandbox (a fake of the platform's API as an ASGI app) for tests and the demo.

    :return: :class:`cmis_core.contract.Sandbox` records.

    Example::

        @hookimpl
        def cmis_sandboxes():
            from cmis_core.contract import Sandbox
            from cmis_echo import sandbox
            return [Sandbox(platform="echo", app=sandbox.build, env=sandbox.env)]

    .. versionadded:: 0.1
    """


@hookspec
def cmis_register_commands(cli: click.Group) -> None:
    """Add commands to the ``cmis`` command line (``cmis meta subscribe``, ...).

    :param cli: the top-level ``cmis`` click group; add a group named after the platform.

    Example::

        @hookimpl
        def cmis_register_commands(cli):
            import click

            @cli.group(name="echo")
            def echo_group():
                "Echo Ads commands."

    .. versionadded:: 0.1
    """


# --------------------------------------------------------------------------- observers


@hookspec
def cmis_on_integration_connected(event: IntegrationEvent) -> None:
    """An organisation connected (or reconnected) a platform; the tokens are stored.

    :param event: the integration, its org and platform; ``event.event_id`` is stable
        across redeliveries of this notification.

    Example::

        @hookimpl
        def cmis_on_integration_connected(event):
            print(f"{event.org} connected {event.platform}")

    .. versionadded:: 0.1
    """


@hookspec
def cmis_on_integration_expiring(event: IntegrationEvent) -> None:
    """An integration's grant will expire soon and cannot be renewed without the user.

    :param event: ``event.expires_at`` says when.

    Example::

        @hookimpl
        def cmis_on_integration_expiring(event):
            notify_owner(event.org, f"{event.platform} expires on {event.expires_at:%d %b}")

    .. versionadded:: 0.1
    """


@hookspec
def cmis_on_integration_needs_reauth(event: IntegrationEvent) -> None:
    """An integration's grant was refused; it stops syncing until reconnected.

    :param event: ``event.reason`` is the platform's reason, free of secrets.

    Example::

        @hookimpl
        def cmis_on_integration_needs_reauth(event):
            page_on_call(f"{event.org}/{event.platform} needs reconnecting: {event.reason}")

    .. versionadded:: 0.1
    """


@hookspec
def cmis_on_sync_finished(event: SyncFinishedEvent) -> None:
    """A sync of one integration finished and its data is committed.

    :param event: per-stream record counts and whether every stream succeeded.

    Example::

        @hookimpl
        def cmis_on_sync_finished(event):
            refresh_dashboards(event.org) if event.ok else None

    .. versionadded:: 0.1
    """


@hookspec
def cmis_on_webhook_processed(event: WebhookProcessedEvent) -> None:
    """A webhook event was applied (a lead stored, an entity updated).

    :param event: the delivery id and what was applied; never the lead's field values.

    Example::

        @hookimpl
        def cmis_on_webhook_processed(event):
            if event.kind == "lead":
                crm.enqueue_lead(event.org, event.external_id)

    .. versionadded:: 0.1
    """


CAPABILITY_HOOKS = (
    "cmis_platforms",
    "cmis_auth_providers",
    "cmis_webhook_verifiers",
    "cmis_streams",
    "cmis_sandboxes",
)
OBSERVER_HOOKS = (
    "cmis_on_integration_connected",
    "cmis_on_integration_expiring",
    "cmis_on_integration_needs_reauth",
    "cmis_on_sync_finished",
    "cmis_on_webhook_processed",
)
