"""Grants that nothing can renew: announced ahead, marked needs_reauth once gone.

A provider may tell where a token stands with ``expiry(ctx, tokens)`` (Meta's does: its
long-lived token and its *data-access* expiry, which no exchange extends), answering an
object with ``state`` (``ok``, ``expiring``, ``expired``, ``never``) and ``expires_at``.
The runner asks every active integration of such a platform on each run, not only those
whose access token is near its end: ``expiring`` fires ``cmis_on_integration_expiring``
(once per expiry), ``expired`` marks the integration ``needs_reauth`` (exit 77, once).
No platform is called, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import structlog

from cmis_core.errors import CmisError, ExitCode, ReauthRequired
from cmis_core.runner import report as R
from cmis_core.runner.schedule import integrations_of
from cmis_core.runner.work import Runtime
from cmis_core.types import IntegrationStatus

log = structlog.get_logger(__name__)


def _with_expiry(rt: Runtime) -> dict[str, Any]:
    """Installed platforms whose auth provider answers ``expiry``."""
    found: dict[str, Any] = {}
    for slug in rt.registry.platforms:
        try:
            provider = rt.registry.auth_provider(slug)
        except CmisError:
            continue
        if callable(getattr(provider, "expiry", None)):
            found[slug] = provider
    return found


async def check_expiries(rt: Runtime) -> list[R.IntegrationReport]:
    """Ask ``expiry`` of every active integration of those platforms; reports for the
    integrations that expired in this run (needs_reauth, exit 77)."""
    from cmis_core.auth import events
    from cmis_core.auth.tokens import (
        _expired_for_good,
        load_tokens,
        new_http_client,
        platform_context,
    )

    providers = _with_expiry(rt)
    if not providers:
        return []
    out: list[R.IntegrationReport] = []
    orgs = await asyncio.to_thread(rt.store.list_orgs)
    async with new_http_client(rt.settings) as http:
        for org in orgs:
            known = await asyncio.to_thread(integrations_of, rt.store, org.id, org.slug)
            for item in known:
                provider = providers.get(item.platform)
                if provider is None or item.status != IntegrationStatus.ACTIVE:
                    continue
                try:
                    stored = await asyncio.to_thread(
                        load_tokens, rt.store, rt.vault, org.id, item.platform
                    )
                    ctx = platform_context(rt.registry, rt.settings, item.platform, http=http)
                    where = provider.expiry(ctx, stored.tokens)
                    state = str(getattr(where, "state", "ok"))
                    ends: dt.datetime | None = getattr(where, "expires_at", None)
                    if state == "expiring" and ends is not None:
                        await asyncio.to_thread(
                            events.expiring,
                            rt.registry,
                            rt.store,
                            stored.integration,
                            ends,
                            reason="the grant expires and renewing cannot extend it",
                        )
                    elif state == "expired":
                        await _expired_for_good(
                            rt.store, rt.vault, rt.registry, stored, "the grant expired"
                        )
                except ReauthRequired as exc:
                    log.warning("runner.grant_expired", org=org.slug, platform=item.platform)
                    out.append(
                        R.IntegrationReport(
                            org=org.slug,
                            platform=item.platform,
                            integration_id=item.integration_id,
                            status=R.NEEDS_REAUTH,
                            exit_code=ExitCode.NOPERM,
                            refresh="expired",
                            error=exc.message,
                        )
                    )
                except CmisError as exc:
                    log.warning(
                        "runner.expiry_check_failed",
                        org=org.slug,
                        platform=item.platform,
                        error=type(exc).__name__,
                    )
    return out
