"""The per-integration sync lock: one runner at a time works on an integration.

Taken before any platform call (a token refresh included) and held until the work is
done, by ``cmis sync``, ``cmis run`` and the Celery tasks alike:

- PostgreSQL: a *session* advisory lock (``pg_try_advisory_lock``) on a connection kept
  for the length of the work, outside any transaction, so no row is locked across an
  HTTP call. A killed holder's session ends with its socket, and the lock with it: the
  next run proceeds at once.
- SQLite: a lease row ``sync:<org>:<integration>`` in ``leases`` whose holder renews it
  (a heartbeat, every third of ``CMIS_SYNC_LOCK_SECONDS``). SQLite is one machine, so a
  lease whose holder process on this host is gone (``kill -9``) is taken over at once
  instead of waiting for it to run out; a holder on another host is trusted until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Protocol

import structlog
from sqlalchemy import ColumnElement, Connection, select, text, update

from cmis_core.store import Store, tables
from cmis_core.types import utcnow

log = structlog.get_logger(__name__)

_L = tables.leases
DEFAULT_LEASE_SECONDS = 60.0


def lock_name(org_id: int, integration_id: int) -> str:
    """The lock's name (the lease row's on SQLite)."""
    return f"sync:{org_id}:{integration_id}"


def advisory_key(name: str) -> int:
    """The signed 64-bit key of PostgreSQL's advisory lock for ``name``."""
    digest = hashlib.blake2b(f"cmis:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def new_owner() -> str:
    """A holder id: host, process id and a random part (``host:pid:hex``)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(6)}"


def holder_is_dead(owner: str, *, host: str | None = None) -> bool:
    """True when ``owner`` names a process of this host that no longer runs."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != (host or socket.gethostname()[:100]):
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed process its parent has not reaped yet still answers kill(0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


class IntegrationLock(Protocol):
    """A lock on one integration; ``acquire`` never waits."""

    name: str
    owner: str

    async def acquire(self) -> bool:
        """Take the lock; ``False`` when another run holds it."""
        ...

    async def release(self) -> None:
        """Give the lock back (safe to call when not held)."""
        ...


class AdvisoryLock:
    """PostgreSQL: a session advisory lock on a connection of its own."""

    def __init__(self, store: Store, name: str, owner: str) -> None:
        self.store = store
        self.name = name
        self.owner = owner
        self.key = advisory_key(name)
        self._conn: Connection | None = None

    def _acquire(self) -> bool:
        conn = self.store.engine.connect()
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            conn.commit()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            conn.commit()
        except Exception:
            conn.invalidate()  # the session ends, and its lock with it
            log.warning("runner.unlock_failed", lock=self.name)
        finally:
            conn.close()

    async def acquire(self) -> bool:
        return await asyncio.to_thread(self._acquire)

    async def release(self) -> None:
        await asyncio.to_thread(self._release)


class LeaseLock:
    """SQLite: a lease row renewed by a heartbeat while held."""

    def __init__(
        self, store: Store, name: str, owner: str, *, seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.store = store
        self.name = name
        self.owner = owner
        self.seconds = seconds
        self.lost = False
        self._beat: asyncio.Task[None] | None = None

    def _claim(self, now: dt.datetime | None = None) -> bool:
        from cmis_core.auth.lease import ensure_row

        now = now or utcnow()
        until = now + dt.timedelta(seconds=self.seconds)
        with self.store.system() as conn:
            ensure_row(conn, self.name)
            row = conn.execute(select(_L.c.owner, _L.c.until).where(_L.c.name == self.name)).one()
            current, held_until = row.owner, row.until
            if current and current != self.owner and held_until is not None:
                if held_until.tzinfo is None:
                    held_until = held_until.replace(tzinfo=dt.UTC)
                if held_until > now and not holder_is_dead(current):
                    return False
                if held_until > now:
                    log.info("runner.lock_taken_over", lock=self.name, dead_holder=current)
            done = conn.execute(
                update(_L)
                .where(_L.c.name == self.name, _owner_is(current))
                .values(owner=self.owner, until=until, version=_L.c.version + 1)
            )
            return done.rowcount == 1

    def _free(self) -> None:
        with self.store.system() as conn:
            conn.execute(
                update(_L)
                .where(_L.c.name == self.name, _L.c.owner == self.owner)
                .values(owner=None, until=None)
            )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                renewed = await asyncio.to_thread(self._claim)
            except Exception as exc:  # a busy database: try again at the next beat
                log.warning("runner.lock_renew_failed", lock=self.name, error=type(exc).__name__)
                continue
            if not renewed:
                self.lost = True
                log.warning("runner.lock_lost", lock=self.name)
                return

    async def acquire(self) -> bool:
        if not await asyncio.to_thread(self._claim):
            return False
        self._beat = asyncio.create_task(self._heartbeat(), name=f"heartbeat {self.name}")
        return True

    async def release(self) -> None:
        beat, self._beat = self._beat, None
        if beat is None:
            return
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await asyncio.to_thread(self._free)


def _owner_is(owner: str | None) -> ColumnElement[bool]:
    return _L.c.owner.is_(None) if owner is None else _L.c.owner == owner


def integration_lock(
    store: Store,
    org_id: int,
    integration_id: int,
    *,
    owner: str | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> IntegrationLock:
    """The lock of integration ``integration_id`` of ``org_id`` for this store's backend."""
    name = lock_name(org_id, integration_id)
    owner = owner or new_owner()
    if store.is_postgres:
        return AdvisoryLock(store, name, owner)
    return LeaseLock(store, name, owner, seconds=lease_seconds)


@contextlib.asynccontextmanager
async def held(lock: IntegrationLock) -> AsyncIterator[bool]:
    """``async with held(lock) as got:``: ``got`` tells whether the lock was taken."""
    got = await lock.acquire()
    try:
        yield got
    finally:
        if got:
            await lock.release()
