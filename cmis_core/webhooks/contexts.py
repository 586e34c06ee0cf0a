"""Where the inbox processor gets a :class:`PlatformContext` for a routed event.

Fetching what an event only names (Meta's lead by id) needs the routed integration's
fresh tokens. The processor does not know how tokens are kept: it is given a
:class:`ContextProvider`, an async callable ``(platform, target) -> PlatformContext``
whose ``http`` client is authorised for that organisation and integration. The token
machinery (``cmis_core.auth``) supplies the real one; until it is wired in,
:class:`UnauthenticatedContexts` answers for deliveries that carry everything (Google)
and refuses, as a retryable error, events that need a fetch.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from cmis_core.errors import Transient
from cmis_core.factory import Registry
from cmis_core.settings import Settings
from cmis_core.store.records import RouteTarget
from cmis_core.types import PlatformContext


class ContextProvider(Protocol):
    """Gives a context authorised for the integration an event was routed to."""

    async def __call__(self, platform: str, target: RouteTarget) -> PlatformContext:
        """A context for ``platform`` acting for ``target`` (org and integration)."""
        ...


class UnauthenticatedContexts:
    """The stand-in provider: no tokens, so any fetch is refused (retried later)."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    async def __call__(self, platform: str, target: RouteTarget) -> PlatformContext:
        raise Transient(
            f"fetching {platform} webhook data for integration {target.integration_id} "
            "needs the token provider, which is not configured in this process",
            platform=platform,
        )


def context_for(
    registry: Registry, settings: Settings, platform: str, http: object
) -> PlatformContext:
    """A context for ``platform`` on ``http`` (helper for providers)."""
    import httpx2

    assert isinstance(http, httpx2.AsyncClient)
    return PlatformContext(
        platform=registry.platform(platform),
        settings=settings.platform(platform),
        http=http,
        log=structlog.get_logger("cmis.webhooks").bind(platform=platform),
    )
