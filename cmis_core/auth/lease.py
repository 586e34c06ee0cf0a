"""Named leases in the ``leases`` table: one holder at a time, across threads and processes.

A lease is claimed in a short transaction (an ``UPDATE ... WHERE`` the lease is free,
expired or already ours) and released the same way; nothing is held open while the
holder works. A holder killed mid-work simply stops renewing: once ``until`` passes, the
next claimant takes the lease over. Times are the claimant's clock (UTC).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cmis_core.store import Store, tables
from cmis_core.types import utcnow

_L = tables.leases


def new_owner() -> str:
    """A holder id unique to this call: host, process and a random suffix."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(6)}"


def ensure_row(conn: Connection, name: str) -> None:
    """Create lease row ``name`` (free) unless it exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(_L)
        .values(name=name, version=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def claim(
    store: Store, name: str, owner: str, seconds: float, *, now: dt.datetime | None = None
) -> bool:
    """Take (or renew) lease ``name`` for ``seconds``; False when someone else holds it."""
    now = now or utcnow()
    with store.system() as conn:
        ensure_row(conn, name)
        result = conn.execute(
            update(_L)
            .where(
                _L.c.name == name,
                or_(
                    _L.c.owner.is_(None),
                    _L.c.until.is_(None),
                    _L.c.until <= now,
                    _L.c.owner == owner,
                ),
            )
            .values(
                owner=owner, until=now + dt.timedelta(seconds=seconds), version=_L.c.version + 1
            )
        )
        return result.rowcount == 1


def release(store: Store, name: str, owner: str) -> bool:
    """Give lease ``name`` back if ``owner`` still holds it."""
    with store.system() as conn:
        result = conn.execute(
            update(_L).where(_L.c.name == name, _L.c.owner == owner).values(owner=None, until=None)
        )
        return result.rowcount == 1


def holder(store: Store, name: str) -> tuple[str | None, dt.datetime | None]:
    """Who holds lease ``name`` and until when (``(None, None)`` when free or unknown)."""
    with store.system(write=False) as conn:
        row = conn.execute(select(_L.c.owner, _L.c.until).where(_L.c.name == name)).first()
    if row is None:
        return None, None
    return row.owner, row.until
