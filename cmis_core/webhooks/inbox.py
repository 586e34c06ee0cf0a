"""The inbox table (``webhook_events``) as processors and operators see it.

Rows move ``received`` -> ``processed``, or wait as ``unroutable`` (no organisation claims
an event yet: retried later and after each sync, never dropped) or ``failed`` (retried
with back-off, parked after ``CMIS_WEBHOOK_MAX_ATTEMPTS``; ``cmis webhooks retry``).

Claiming: a processor takes due rows in one short transaction and stamps them with a
lease, ``next_attempt_at = <lease end>``, the same value for the whole batch
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises
claims). That stamp is the fencing token: a row is finished only by an update that finds
it still carrying the lease it was claimed with, in the transaction that applies its
effects. A processor that outlived its lease (killed, stalled) finds the stamp changed and
rolls back, so each delivery is applied once even with several processors running.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from sqlalchemy import Connection, and_, func, or_, select, update

from cmis_core.errors import UsageError
from cmis_core.store.tables import webhook_events
from cmis_core.webhooks.metrics import InboxGauge

RECEIVED, PROCESSED, UNROUTABLE, FAILED = "received", "processed", "unroutable", "failed"
PENDING = (RECEIVED, UNROUTABLE, FAILED)
MAX_ERROR = 500

_t = webhook_events.c


@attrs.frozen(kw_only=True)
class ClaimedRow:
    """A delivery a processor holds until ``lease``."""

    id: int
    platform: str
    dedupe_key: str
    received_at: dt.datetime
    status: str
    attempts: int
    lease: dt.datetime
    body: bytes | None = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class InboxRow:
    """An inbox row as `cmis webhooks list` shows it (never the body)."""

    id: int
    platform: str
    dedupe_key: str
    status: str
    attempts: int
    received_at: dt.datetime
    next_attempt_at: dt.datetime | None
    processed_at: dt.datetime | None
    org_id: int | None
    integration_id: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "platform": self.platform,
            "dedupe_key": self.dedupe_key,
            "status": self.status,
            "attempts": self.attempts,
            "received_at": iso(self.received_at),
            "next_attempt_at": iso(self.next_attempt_at),
            "processed_at": iso(self.processed_at),
            "org_id": self.org_id,
            "integration_id": self.integration_id,
            "error": self.error,
        }


def _due(now: dt.datetime) -> Any:
    return and_(
        _t.status.in_((RECEIVED, UNROUTABLE)),
        or_(_t.next_attempt_at.is_(None), _t.next_attempt_at <= now),
    )


def claim(
    conn: Connection,
    *,
    now: dt.datetime,
    lease: dt.datetime,
    limit: int,
    platform: str | None = None,
) -> list[ClaimedRow]:
    """Take up to ``limit`` due rows (oldest first) until ``lease``; counts an attempt each."""
    due = select(_t.id).where(_due(now)).order_by(_t.id).limit(limit)
    if platform is not None:
        due = due.where(_t.platform == platform)
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = conn.execute(
        update(webhook_events)
        .where(_t.id.in_(due.scalar_subquery()))
        .values(attempts=_t.attempts + 1, next_attempt_at=lease)
        .returning(
            _t.id,
            _t.platform,
            _t.dedupe_key,
            _t.received_at,
            _t.status,
            _t.attempts,
            _t.body,
        )
    ).all()
    claimed = [
        ClaimedRow(
            id=int(r.id),
            platform=r.platform,
            dedupe_key=r.dedupe_key,
            received_at=r.received_at,
            status=r.status,
            attempts=int(r.attempts),
            lease=lease,
            body=None if r.body is None else bytes(r.body),
        )
        for r in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


def _held(ids: Sequence[int], lease: dt.datetime) -> Any:
    return and_(_t.id.in_(list(ids)), _t.next_attempt_at == lease, _t.status.in_(PENDING))


def finish(
    conn: Connection,
    ids: Sequence[int],
    lease: dt.datetime,
    *,
    now: dt.datetime,
    org_id: int | None = None,
    integration_id: int | None = None,
) -> int:
    """Mark ``ids`` processed if still held under ``lease``; the number of rows marked."""
    if not ids:
        return 0
    values: dict[str, Any] = {
        "status": PROCESSED,
        "processed_at": now,
        "next_attempt_at": None,
        "error": None,
    }
    if org_id is not None:
        values.update(org_id=org_id, integration_id=integration_id)
    return int(
        conn.execute(update(webhook_events).where(_held(ids, lease)).values(**values)).rowcount
    )


def still_held(conn: Connection, row_id: int, lease: dt.datetime) -> bool:
    """True while the row is held under ``lease`` (locks it on PostgreSQL)."""
    query = select(_t.id).where(_held([row_id], lease))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first() is not None


def park(
    conn: Connection,
    row_id: int,
    lease: dt.datetime,
    *,
    status: str,
    error: str,
    next_attempt_at: dt.datetime | None,
    uncount: bool = False,
) -> bool:
    """Leave a held row ``received``/``unroutable``/``failed`` with ``error``; False if lost.

    ``uncount`` gives back the attempt the claim counted (waiting for a route is no failure).
    """
    values: dict[str, Any] = {
        "status": status,
        "error": error[:MAX_ERROR],
        "next_attempt_at": next_attempt_at,
    }
    if uncount:
        values["attempts"] = _t.attempts - 1
    result = conn.execute(update(webhook_events).where(_held([row_id], lease)).values(**values))
    return bool(result.rowcount)


def _row(r: Any) -> InboxRow:
    return InboxRow(
        id=int(r.id),
        platform=r.platform,
        dedupe_key=r.dedupe_key,
        status=r.status,
        attempts=int(r.attempts),
        received_at=r.received_at,
        next_attempt_at=r.next_attempt_at,
        processed_at=r.processed_at,
        org_id=r.org_id,
        integration_id=r.integration_id,
        error=r.error,
    )


def list_rows(
    conn: Connection,
    *,
    statuses: Iterable[str] | None = None,
    platform: str | None = None,
    limit: int = 50,
) -> list[InboxRow]:
    """Inbox rows, newest first, without bodies."""
    query = (
        select(
            _t.id,
            _t.platform,
            _t.dedupe_key,
            _t.status,
            _t.attempts,
            _t.received_at,
            _t.next_attempt_at,
            _t.processed_at,
            _t.org_id,
            _t.integration_id,
            _t.error,
        )
        .order_by(_t.id.desc())
        .limit(limit)
    )
    if statuses is not None:
        query = query.where(_t.status.in_(list(statuses)))
    if platform is not None:
        query = query.where(_t.platform == platform)
    return [_row(r) for r in conn.execute(query)]


def retry(conn: Connection, row_id: int) -> InboxRow:
    """Make a failed or unroutable row due now, with its attempts reset."""
    found = conn.execute(select(_t.status, _t.body).where(_t.id == row_id)).first()
    if found is None:
        raise UsageError(f"no inbox row {row_id}")
    if found.status == PROCESSED:
        raise UsageError(f"inbox row {row_id} is already processed")
    if found.body is None:
        raise UsageError(f"inbox row {row_id} has no body left to process")
    conn.execute(
        update(webhook_events)
        .where(_t.id == row_id)
        .values(status=RECEIVED, attempts=0, next_attempt_at=None, error=None)
    )
    row = conn.execute(select(webhook_events).where(_t.id == row_id)).one()
    return _row(row)


def requeue_unroutable(conn: Connection, *, platform: str | None = None) -> int:
    """Make every unroutable row due now (call after a sync wrote new routes)."""
    query = update(webhook_events).where(_t.status == UNROUTABLE).values(next_attempt_at=None)
    if platform is not None:
        query = query.where(_t.platform == platform)
    return int(conn.execute(query).rowcount)


def purge(conn: Connection, *, before: dt.datetime) -> int:
    """Drop the bodies (and headers) of rows processed before ``before``; keep the rows.

    The rows stay so that a late redelivery is still recognised as a duplicate.
    """
    result = conn.execute(
        update(webhook_events)
        .where(_t.status == PROCESSED, _t.processed_at < before, _t.body.is_not(None))
        .values(body=None, headers={})
    )
    return int(result.rowcount)


def gauges(conn: Connection, *, now: dt.datetime) -> list[InboxGauge]:
    """Rows not processed yet, per platform and status, with the oldest one's age."""
    rows = conn.execute(
        select(_t.platform, _t.status, func.count(), func.min(_t.received_at))
        .where(_t.status.in_(PENDING))
        .group_by(_t.platform, _t.status)
    ).all()
    out = []
    for platform, status, count, oldest in rows:
        if isinstance(oldest, str):  # SQLite aggregates lose the column type
            oldest = dt.datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        out.append(
            InboxGauge(platform=platform, status=status, rows=int(count), oldest_seconds=age)
        )
    return out
