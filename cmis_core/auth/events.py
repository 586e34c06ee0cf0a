"""Observer events of the auth flows, fired after the change they report is committed.

Event ids are stable for one occurrence (``connected:<org>:<integration>:<version>``), so
an observer that runs twice for one event can tell. The *expiring* notice is fired once
per expiry time of an integration: a marker in the ``leases`` table remembers it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from cmis_core.auth.integrations import IntegrationInfo
from cmis_core.auth.lease import ensure_row
from cmis_core.factory import Registry
from cmis_core.store import Store, tables
from cmis_core.types import IntegrationEvent, IntegrationStatus


def org_slug(store: Store, org_id: int) -> str:
    """The slug of organisation ``org_id`` (its id as text if it is gone)."""
    o = tables.organizations
    with store.system(write=False) as conn:
        slug = conn.execute(select(o.c.slug).where(o.c.id == org_id)).scalar_one_or_none()
    return str(slug) if slug is not None else str(org_id)


def reconnect_hint(platform: str, org: str) -> str:
    """What to run to reconnect."""
    return f"reconnect with `cmis connect {platform} --org {org}`"


def _event(
    kind: str,
    store: Store,
    integration: IntegrationInfo,
    marker: str,
    status: IntegrationStatus,
    *,
    reason: str | None = None,
    expires_at: dt.datetime | None = None,
) -> IntegrationEvent:
    return IntegrationEvent(
        event_id=f"{kind}:{integration.org_id}:{integration.id}:{marker}",
        org=org_slug(store, integration.org_id),
        platform=integration.platform,
        integration_id=str(integration.id),
        status=status,
        reason=reason,
        expires_at=expires_at,
    )


def connected(
    registry: Registry, store: Store, integration: IntegrationInfo, version: int
) -> IntegrationEvent:
    """Fire ``cmis_on_integration_connected``."""
    event = _event(
        "connected",
        store,
        integration,
        str(version),
        IntegrationStatus.ACTIVE,
        expires_at=integration.access_expires_at,
    )
    registry.integration_connected(event)
    return event


def needs_reauth(
    registry: Registry, store: Store, integration: IntegrationInfo, version: int, reason: str
) -> IntegrationEvent:
    """Fire ``cmis_on_integration_needs_reauth``."""
    event = _event(
        "needs_reauth",
        store,
        integration,
        str(version),
        IntegrationStatus.NEEDS_REAUTH,
        reason=reason,
    )
    registry.integration_needs_reauth(event)
    return event


def expiring(
    registry: Registry,
    store: Store,
    integration: IntegrationInfo,
    expires_at: dt.datetime,
    *,
    reason: str,
) -> IntegrationEvent | None:
    """Fire ``cmis_on_integration_expiring`` once per (integration, ``expires_at``).

    Returns the event, or ``None`` when this expiry was already announced.
    """
    marker = expires_at.astimezone(dt.UTC).isoformat()
    name = f"expiring:{integration.org_id}:{integration.id}"
    leases = tables.leases
    with store.system() as conn:
        ensure_row(conn, name)
        first = conn.execute(
            update(leases)
            .where(
                leases.c.name == name,
                (leases.c.owner.is_(None)) | (leases.c.owner != marker),
            )
            .values(owner=marker, version=leases.c.version + 1)
        )
    if first.rowcount != 1:
        return None
    event = _event(
        "expiring",
        store,
        integration,
        marker,
        integration.status,
        reason=reason,
        expires_at=expires_at,
    )
    registry.integration_expiring(event)
    return event
