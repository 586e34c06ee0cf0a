"""The only reads across organisations: due work and webhook routing.

On PostgreSQL they call the SECURITY DEFINER functions ``cmis_due_integrations`` and
``cmis_route`` (created by the migrations, executable by the application role), so the
application role itself never reads another organisation's rows. On SQLite they are
plain queries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, and_, func, or_, select, text

from cmis_core.store.records import DueIntegration, RouteTarget
from cmis_core.store.tables import integrations, routes


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value


def due_integrations(
    conn: Connection, now: dt.datetime, refresh_before: dt.datetime
) -> list[DueIntegration]:
    """Active integrations with a sync due at ``now`` (scheduled or queued) or an access
    token expiring before ``refresh_before``; the longest-waiting first."""
    _aware(now)
    _aware(refresh_before)
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text("SELECT * FROM cmis_due_integrations(:now, :before)"),
            {"now": now, "before": refresh_before},
        )
    else:
        i = integrations.c
        sync_due = or_(i.queued_at.is_not(None), i.next_sync_at.is_(None), i.next_sync_at <= now)
        refresh_due = and_(i.access_expires_at.is_not(None), i.access_expires_at <= refresh_before)
        rows = conn.execute(
            select(
                i.org_id,
                i.id.label("integration_id"),
                i.platform,
                sync_due.label("sync_due"),
                refresh_due.label("refresh_due"),
            )
            .where(i.status == "active", or_(sync_due, refresh_due))
            .order_by(func.coalesce(i.queued_at, i.next_sync_at).nulls_first(), i.org_id, i.id)
        )
    return [
        DueIntegration(
            org_id=int(r.org_id),
            integration_id=int(r.integration_id),
            platform=r.platform,
            sync_due=bool(r.sync_due),
            refresh_due=bool(r.refresh_due),
        )
        for r in rows
    ]


def route(conn: Connection, platform: str, kind: str, external_id: str) -> RouteTarget | None:
    """The organisation and integration that receive webhooks about ``external_id``.

    When several organisations route the same id, the most recently updated route wins.
    Disconnected integrations receive nothing.
    """
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            text("SELECT * FROM cmis_route(:p, :k, :e)"),
            {"p": platform, "k": kind, "e": external_id},
        ).first()
    else:
        r, i = routes.c, integrations.c
        row = conn.execute(
            select(r.org_id, r.integration_id)
            .join_from(routes, integrations, and_(i.org_id == r.org_id, i.id == r.integration_id))
            .where(
                r.platform == platform,
                r.kind == kind,
                r.external_id == external_id,
                i.status != "disconnected",
            )
            .order_by(r.updated_at.desc(), r.org_id)
            .limit(1)
        ).first()
    if row is None:
        return None
    return RouteTarget(org_id=int(row.org_id), integration_id=int(row.integration_id))
