"""Sync state in the ``sync_state`` table, and the run rows in ``sync_runs``.

A stream's state is a flat mapping (``watermark:act_1``, ``metrics_until:act_1``,
``inflight:<partition>``): one ``sync_state`` row per key (``partition_key`` is the key,
``state`` its JSON value), so ``Page.state``'s shallow merge is an upsert per key and a
``None`` a delete, and concurrent partitions of one stream never rewrite each other's keys.

The engine keeps its own keys beside them, never shown to streams: ``done:<partition
key>`` = ``{"run": <run id>}``, written in the transaction that stores a partition's last
page. A run killed before it finished is resumed by the next one, which skips the
partitions that run completed; the markers are cleared when a run finishes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from sqlalchemy import Connection, and_, delete, insert, select, update

from cmis_core.errors import ReauthRequired, UsageError
from cmis_core.store import current_org_id, tables
from cmis_core.types import IntegrationStatus, utcnow

DONE = "done:"
RUNNING = "running"


@attrs.frozen(kw_only=True)
class IntegrationRow:
    """The integration a sync runs for."""

    id: int
    platform: str
    status: str


def find_integration(conn: Connection, platform: str) -> IntegrationRow:
    """The organisation's integration with ``platform``; a clear error when there is none."""
    t = tables.integrations
    row = (
        conn.execute(
            select(t.c.id, t.c.platform, t.c.status).where(
                t.c.org_id == current_org_id(conn), t.c.platform == platform
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise UsageError(
            f"this organisation has no {platform} integration",
            hint=f"connect it first: cmis connect {platform} --org ORG",
        )
    if row["status"] == IntegrationStatus.NEEDS_REAUTH:
        raise ReauthRequired(
            f"the {platform} integration needs re-authorisation",
            platform=platform,
            hint=f"reconnect: cmis connect {platform} --org ORG",
        )
    if row["status"] == IntegrationStatus.DISCONNECTED:
        raise UsageError(f"the {platform} integration is disconnected")
    return IntegrationRow(id=int(row["id"]), platform=platform, status=str(row["status"]))


def _scope(conn: Connection, integration_id: int) -> Any:
    t = tables.sync_state
    return and_(t.c.org_id == current_org_id(conn), t.c.integration_id == integration_id)


def load_state(conn: Connection, integration_id: int, stream: str) -> dict[str, Any]:
    """The stored state of ``stream`` (the engine's own keys left out)."""
    t = tables.sync_state
    rows = conn.execute(
        select(t.c.partition_key, t.c.state).where(
            _scope(conn, integration_id), t.c.stream == stream
        )
    )
    return {key: value for key, value in rows if not key.startswith(DONE)}


def load_done(conn: Connection, integration_id: int, run_id: int) -> dict[str, set[str]]:
    """Partitions completed by run ``run_id``, by stream."""
    t = tables.sync_state
    rows = conn.execute(
        select(t.c.stream, t.c.partition_key, t.c.state).where(
            _scope(conn, integration_id), t.c.partition_key.startswith(DONE)
        )
    )
    done: dict[str, set[str]] = {}
    for stream, key, value in rows:
        if isinstance(value, Mapping) and value.get("run") == run_id:
            done.setdefault(stream, set()).add(key.removeprefix(DONE))
    return done


def clear_done(conn: Connection, integration_id: int) -> None:
    """Forget every partition-done marker of the integration."""
    t = tables.sync_state
    conn.execute(delete(t).where(_scope(conn, integration_id), t.c.partition_key.startswith(DONE)))


def clear_streams(conn: Connection, integration_id: int, streams: Iterable[str]) -> None:
    """Forget the whole state of ``streams`` (a full refresh)."""
    t = tables.sync_state
    conn.execute(delete(t).where(_scope(conn, integration_id), t.c.stream.in_(list(streams))))


def start_run(conn: Connection, integration_id: int) -> tuple[int, bool]:
    """``(run id, resumed)``: the run a kill interrupted, or a new one."""
    t = tables.sync_runs
    org_id = current_org_id(conn)
    found = conn.execute(
        select(t.c.id)
        .where(t.c.org_id == org_id, t.c.integration_id == integration_id, t.c.status == RUNNING)
        .order_by(t.c.id.desc())
        .limit(1)
    ).scalar()
    if found is not None:
        return int(found), True
    clear_done(conn, integration_id)
    run_id = conn.execute(
        insert(t)
        .values(org_id=org_id, integration_id=integration_id, status=RUNNING, started_at=utcnow())
        .returning(t.c.id)
    ).scalar_one()
    return int(run_id), False


def run_started_at(conn: Connection, run_id: int) -> dt.datetime:
    t = tables.sync_runs
    value = conn.execute(
        select(t.c.started_at).where(t.c.org_id == current_org_id(conn), t.c.id == run_id)
    ).scalar_one()
    return value if isinstance(value, dt.datetime) else utcnow()


def finish_run(
    conn: Connection,
    integration_id: int,
    run_id: int,
    *,
    status: str,
    records: int,
    calls: int,
    error: str | None,
) -> dt.datetime:
    """Close run ``run_id`` and clear the partition-done markers; returns the finish time."""
    t = tables.sync_runs
    now = utcnow()
    conn.execute(
        update(t)
        .where(t.c.org_id == current_org_id(conn), t.c.id == run_id)
        .values(
            status=status,
            finished_at=now,
            records=t.c.records + records,
            calls=t.c.calls + calls,
            error=error[:2000] if error else None,
        )
    )
    clear_done(conn, integration_id)
    return now


def account_records(conn: Connection, platform: str, integration_id: int) -> list[dict[str, Any]]:
    """The integration's ad accounts enabled for sync, in the record shape streams read
    (``external_id``, ``timezone``, ``currency``, ``platform_status``, ``raw``...)."""
    t = tables.ad_accounts
    rows = conn.execute(
        select(t)
        .where(
            t.c.org_id == current_org_id(conn),
            t.c.platform == platform,
            t.c.integration_id == integration_id,
            t.c.sync_enabled.is_(True),
        )
        .order_by(t.c.external_id)
    ).mappings()
    return [
        {
            "external_id": r["external_id"],
            "name": r["name"],
            "currency": r["currency"],
            "timezone": r["time_zone"],
            "time_zone": r["time_zone"],
            "status": r["status"],
            "platform_status": r["platform_status"],
            "raw": r["raw"] or {},
        }
        for r in rows
    ]
