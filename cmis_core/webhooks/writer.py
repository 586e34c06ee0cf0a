"""The receive path's way into the inbox: async, batched, committed before the answer.

A request hands its :class:`~cmis_core.webhooks.delivery.Delivery` to
:meth:`InboxWriter.store` and waits for the commit; writer tasks take whatever has queued
up meanwhile and commit it as one statement (group commit, no added delay: a lone delivery
is written at once, a burst shares its fsyncs). ``store`` answers ``True`` for a new row,
``False`` for a redelivery (same platform and dedupe key), and raises
:class:`InboxUnavailable` when the database did not confirm the commit in time: the
service then answers 503 and the platform retries, so nothing is acknowledged unstored.

- PostgreSQL: psycopg 3 async connections (``writers`` of them, default 2), one prepared
  ``INSERT ... SELECT FROM jsonb_to_recordset(%s) ON CONFLICT DO NOTHING RETURNING`` per
  batch, in autocommit, with the server's ``synchronous_commit`` (on by default). The
  batch travels as one JSON document (body in base64): psycopg adapts arrays in Python,
  about 80 µs per delivery for the five columns, where ``json.dumps`` takes a few.
- SQLite: one writer thread owning one connection (``synchronous = FULL``, so a commit
  survives a power cut too), ``BEGIN IMMEDIATE``, one multi-row ``INSERT ... RETURNING``,
  ``COMMIT`` per batch.

The wait for the commit is bounded with :class:`~cmis_core.webhooks.deadlines.Deadlines`
(no timer per delivery).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import datetime as dt
import functools
import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from cmis_core.webhooks.deadlines import Deadlines
from cmis_core.webhooks.delivery import Delivery

if TYPE_CHECKING:
    import psycopg

    from cmis_core.store import Store

log = structlog.get_logger(__name__)

MAX_BATCH = 512
MAX_PENDING = 20_000
# rows per SQLite INSERT statement: 5 parameters each, under SQLite's oldest limit of 999
SQLITE_ROWS_PER_INSERT = 128


class InboxUnavailable(Exception):
    """The inbox did not confirm the commit (database down, too slow, or too much queued)."""


class InboxWriter(Protocol):
    """Commits deliveries to the inbox for the receive path."""

    async def store(self, delivery: Delivery, *, within: float) -> bool:
        """Commit ``delivery`` within ``within`` seconds: ``True`` if new, ``False`` if
        already stored; :class:`InboxUnavailable` otherwise."""
        ...

    async def close(self) -> None:
        """Stop the writer tasks and close the connections."""
        ...


_Item = tuple[Delivery, "asyncio.Future[bool]"]


class _BatchingWriter:
    """The queue, the writer tasks and the wait with a deadline; subclasses write batches."""

    writers = 1

    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Item] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._deadlines = Deadlines()

    def _ensure_started(self) -> asyncio.Queue[_Item]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [
                asyncio.create_task(self._run(), name=f"cmis-inbox-writer-{i}")
                for i in range(self.writers)
            ]
        return self._queue

    async def store(self, delivery: Delivery, *, within: float) -> bool:
        if self._closed:
            raise InboxUnavailable("the inbox writer is closed")
        queue = self._ensure_started()
        if queue.qsize() >= MAX_PENDING:
            raise InboxUnavailable("too many deliveries waiting for the database")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queue.put_nowait((delivery, future))
        deadlines = self._deadlines
        task = deadlines.watch(within)
        try:  # a timed-out delivery may still be written: its redelivery is then a duplicate
            new = await future
        except asyncio.CancelledError:
            if deadlines.done(task):
                raise InboxUnavailable("the inbox commit took too long") from None
            raise
        deadlines.done(task)
        return new

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(d, f) for d, f in batch if not f.done()]
            if not live:
                continue
            try:
                new = await self._write([d for d, _ in live])
            except asyncio.CancelledError:
                for _, future in live:
                    if not future.done():
                        future.set_exception(InboxUnavailable("the inbox writer stopped"))
                raise
            except Exception as exc:
                log.error("webhooks.inbox_write_failed", error=type(exc).__name__, batch=len(live))
                for _, future in live:
                    if not future.done():
                        future.set_exception(InboxUnavailable("the inbox is unavailable"))
                await self._after_failure()
                continue
            for (_, future), is_new in zip(live, new, strict=True):
                if not future.done():
                    future.set_result(is_new)

    async def _write(self, batch: Sequence[Delivery]) -> list[bool]:
        raise NotImplementedError

    async def _after_failure(self) -> None:
        """Called after a failed batch (drop the connection, so the next batch reconnects)."""

    async def _stop_tasks(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []


def _firsts(batch: Sequence[Delivery]) -> list[bool]:
    """Which deliveries are the first of their (platform, key) in ``batch``."""
    seen: set[tuple[str, str]] = set()
    out = []
    for d in batch:
        key = (d.platform, d.dedupe_key)
        out.append(key not in seen)
        seen.add(key)
    return out


def _headers_json(delivery: Delivery) -> str:
    return json.dumps(dict(delivery.headers), separators=(",", ":"), sort_keys=True)


_PG_INSERT = (
    "INSERT INTO webhook_events"
    " (platform, dedupe_key, received_at, headers, body, status, attempts)"
    " SELECT t.p, t.k, t.r, t.h, decode(t.b, 'base64'), 'received', 0"
    " FROM jsonb_to_recordset(%s::jsonb) AS t(p varchar, k varchar, r timestamptz, h jsonb, b text)"
    " ON CONFLICT (platform, dedupe_key) DO NOTHING"
    " RETURNING platform, dedupe_key"
)


class PostgresInboxWriter(_BatchingWriter):
    """Group commit on PostgreSQL through psycopg 3 async connections."""

    def __init__(self, conninfo: str, *, writers: int = 2, connect_timeout: float = 3.0) -> None:
        super().__init__()
        self._conninfo = conninfo
        self.writers = writers
        self._connect_timeout = connect_timeout
        self._free: list[psycopg.AsyncConnection[Any]] = []

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        if self._free:
            return self._free.pop()
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(1, round(self._connect_timeout)),
            application_name="cmis-inbox",
        )

    async def _write(self, batch: Sequence[Delivery]) -> list[bool]:
        firsts = _firsts(batch)
        rows = [
            {
                "p": d.platform,
                "k": d.dedupe_key,
                "r": d.received_at.isoformat(),
                "h": d.headers,
                "b": base64.b64encode(d.body).decode("ascii"),
            }
            for d, first in zip(batch, firsts, strict=True)
            if first
        ]
        document = json.dumps(rows, separators=(",", ":"))
        conn = await self._connection()
        try:
            cursor = await conn.execute(_PG_INSERT, (document,), prepare=True)
            inserted = {(r[0], r[1]) for r in await cursor.fetchall()}
        except BaseException:
            await conn.close()
            raise
        self._free.append(conn)
        return [
            first and (d.platform, d.dedupe_key) in inserted
            for d, first in zip(batch, firsts, strict=True)
        ]

    async def _after_failure(self) -> None:
        # the failed connection was closed; pause a moment so an outage is not a busy loop
        await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self._stop_tasks()
        while self._free:
            await self._free.pop().close()


class SqliteInboxWriter(_BatchingWriter):
    """Group commit on SQLite: one thread, one connection, one transaction per batch."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 30_000) -> None:
        super().__init__()
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cmis-inbox-sqlite"
        )
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _write_sync(self, batch: Sequence[Delivery]) -> list[bool]:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        firsts = _firsts(batch)
        unique = [d for d, first in zip(batch, firsts, strict=True) if first]
        inserted: set[tuple[str, str]] = set()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(unique), SQLITE_ROWS_PER_INSERT):
                chunk = unique[start : start + SQLITE_ROWS_PER_INSERT]
                params: list[Any] = []
                for d in chunk:
                    params += (d.platform, d.dedupe_key, _sqlite_time(d), _headers_json(d), d.body)
                cursor = conn.execute(_sqlite_insert(len(chunk)), params)
                inserted.update((r[0], r[1]) for r in cursor.fetchall())
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                self._conn = None
            raise
        return [
            first and (d.platform, d.dedupe_key) in inserted
            for d, first in zip(batch, firsts, strict=True)
        ]

    async def _write(self, batch: Sequence[Delivery]) -> list[bool]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._write_sync, list(batch))

    async def close(self) -> None:
        if self._closed and not self._tasks and self._conn is None:
            return
        await self._stop_tasks()

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)


_SQLITE_INSERT = (
    "INSERT INTO webhook_events"
    " (platform, dedupe_key, received_at, headers, body, status, attempts)"
    " VALUES {values} ON CONFLICT (platform, dedupe_key) DO NOTHING"
    " RETURNING platform, dedupe_key"
)


@functools.lru_cache(maxsize=SQLITE_ROWS_PER_INSERT)
def _sqlite_insert(rows: int) -> str:
    """One ``INSERT`` of ``rows`` deliveries, returning the keys it inserted."""
    values = ", ".join(["(?, ?, ?, ?, ?, 'received', 0)"] * rows)
    return _SQLITE_INSERT.format(values=values)


def _sqlite_time(delivery: Delivery) -> str:
    # the format SQLAlchemy's SQLite DateTime writes (naive UTC), so reads and compares agree
    return delivery.received_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def open_writer(store: Store) -> InboxWriter:
    """The writer for ``store``'s database (nothing connects until the first delivery)."""
    url = store.engine.url
    if store.is_postgres:
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresInboxWriter(conninfo)
    database = url.database or ""
    if database in ("", ":memory:"):
        raise ValueError("the webhook inbox needs a SQLite file, not an in-memory database")
    return SqliteInboxWriter(database)
