"""When integrations sync: what is due, what was started, when it is due again.

The schedule lives in ``integrations``: ``next_sync_at`` (NULL: now), ``queued_at`` (a
sync asked for ahead of schedule; cleared when a sync starts), ``sync_interval_seconds``
(default 3600) and ``last_sync_at``. The Celery executor also marks what it enqueued with
a lease row ``queued:<org>:<integration>`` (``queued:inbox`` for the inbox), taken in the
transaction that picks the due work, so a second ``cmis run`` enqueues nothing twice; the
task gives it back when it ends, and a lost task's mark runs out after
``CMIS_RUN_QUEUED_SECONDS``.
"""

from __future__ import annotations

import datetime as dt

import attrs
from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cmis_core.store import Store, crossorg, current_org_id, tables
from cmis_core.store.records import DueIntegration
from cmis_core.types import IntegrationStatus, utcnow

_I = tables.integrations
_L = tables.leases
INBOX = "inbox"


@attrs.frozen(kw_only=True)
class WorkItem:
    """One integration's due work: a token refresh, a sync, or both."""

    org_id: int
    integration_id: int
    platform: str
    refresh: bool = True
    sync: bool = True

    @classmethod
    def from_due(cls, due: DueIntegration) -> WorkItem:
        return cls(
            org_id=due.org_id,
            integration_id=due.integration_id,
            platform=due.platform,
            refresh=due.refresh_due,
            sync=due.sync_due,
        )

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class KnownIntegration:
    """An integration of an organisation, as ``cmis sync`` and the summary list it."""

    org_id: int
    org: str
    integration_id: int
    platform: str
    status: str


def queued_name(org_id: int, integration_id: int) -> str:
    """The lease row that marks an integration's work as enqueued."""
    return f"queued:{org_id}:{integration_id}"


def mark_started(store: Store, org_id: int, integration_id: int) -> None:
    """A sync starts: clear ``queued_at`` (a request made from now on queues a new sync)."""
    with store.org(org_id) as conn:
        conn.execute(
            update(_I)
            .where(_I.c.org_id == current_org_id(conn), _I.c.id == integration_id)
            .values(queued_at=None)
        )


def reschedule(
    store: Store,
    org_id: int,
    integration_id: int,
    *,
    finished_at: dt.datetime | None,
    retry_after: float | None = None,
    now: dt.datetime | None = None,
) -> dt.datetime:
    """Set the next sync: after the interval, or after ``retry_after`` seconds when the
    platform asked for a wait; ``finished_at`` becomes ``last_sync_at`` when given."""
    now = now or utcnow()
    with store.org(org_id) as conn:
        interval = conn.execute(
            select(_I.c.sync_interval_seconds).where(
                _I.c.org_id == current_org_id(conn), _I.c.id == integration_id
            )
        ).scalar()
        seconds = float(interval or 3600)
        if retry_after is not None:
            seconds = max(1.0, float(retry_after))
        following = now + dt.timedelta(seconds=seconds)
        values: dict[str, object] = {"next_sync_at": following}
        if finished_at is not None:
            values["last_sync_at"] = finished_at
        conn.execute(
            update(_I)
            .where(_I.c.org_id == current_org_id(conn), _I.c.id == integration_id)
            .values(**values)
        )
    return following


def integrations_of(store: Store, org_id: int, slug: str) -> list[KnownIntegration]:
    """Every integration of organisation ``org_id`` (``slug``), by platform."""
    with store.org(org_id, write=False) as conn:
        rows = conn.execute(
            select(_I.c.id, _I.c.platform, _I.c.status)
            .where(_I.c.org_id == current_org_id(conn))
            .order_by(_I.c.platform)
        ).all()
    return [
        KnownIntegration(
            org_id=org_id, org=slug, integration_id=int(r.id), platform=r.platform, status=r.status
        )
        for r in rows
    ]


def needing_reauth(store: Store) -> list[KnownIntegration]:
    """Integrations of every organisation that need re-authorisation (one org at a time)."""
    found: list[KnownIntegration] = []
    for org in store.list_orgs():
        found.extend(
            i
            for i in integrations_of(store, org.id, org.slug)
            if i.status == IntegrationStatus.NEEDS_REAUTH
        )
    return found


# ------------------------------------------------------------------ the Celery executor's picking


def _ensure(conn: Connection, name: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(_L)
        .values(name=name, version=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def _mark(conn: Connection, name: str, owner: str, now: dt.datetime, seconds: float) -> bool:
    _ensure(conn, name)
    done = conn.execute(
        update(_L)
        .where(
            _L.c.name == name, or_(_L.c.owner.is_(None), _L.c.until.is_(None), _L.c.until <= now)
        )
        .values(owner=owner, until=now + dt.timedelta(seconds=seconds), version=_L.c.version + 1)
    )
    return done.rowcount == 1


def pick_and_mark(
    store: Store,
    owner: str,
    *,
    now: dt.datetime,
    refresh_ahead: dt.timedelta,
    seconds: float,
    inbox: bool = True,
) -> tuple[list[WorkItem], bool]:
    """Due work not enqueued yet, marked enqueued by ``owner``, in one transaction.

    Returns the items marked and whether the inbox was marked too. On PostgreSQL the
    transaction reads through ``cmis_due_integrations`` and the marks are rows of the
    system table ``leases``; a concurrent picker blocks on the same rows and finds them
    taken.
    """
    with store.system() as conn:
        due = crossorg.due_integrations(conn, now, now + refresh_ahead)
        items = [
            WorkItem.from_due(d)
            for d in due
            if _mark(conn, queued_name(d.org_id, d.integration_id), owner, now, seconds)
        ]
        inbox_marked = inbox and _mark(conn, f"queued:{INBOX}", owner, now, seconds)
    return items, inbox_marked


def unmark(store: Store, name: str, owner: str) -> bool:
    """Give back the enqueued mark ``name`` if ``owner`` still holds it."""
    with store.system() as conn:
        done = conn.execute(
            update(_L).where(_L.c.name == name, _L.c.owner == owner).values(owner=None, until=None)
        )
        return done.rowcount == 1


def marked(store: Store, names: list[str], owner: str) -> list[str]:
    """Which of the marks ``names`` ``owner`` still holds."""
    if not names:
        return []
    with store.system(write=False) as conn:
        rows = conn.execute(
            select(_L.c.name).where(and_(_L.c.name.in_(names), _L.c.owner == owner))
        ).scalars()
        return [str(r) for r in rows]
