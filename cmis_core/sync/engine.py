"""The sync engine: one integration's streams, read with bounded concurrency, stored in bulk.

:func:`sync_integration` is the entry point the runner calls. One run:

1. checks the API version (:mod:`cmis_core.sync.versions`), finds the integration, and
   opens a ``sync_runs`` row, or resumes the run a kill interrupted;
2. reads the root stream (ad accounts) and stores it; the accounts enabled for sync are
   read back from the database (:mod:`cmis_core.sync.fanout`);
3. runs every other stream once per account (a *unit*), at most ``CMIS_SYNC_CONCURRENCY``
   units at a time (default: the platform's ``rate_limit.max_concurrency``); a unit asks
   its stream for partitions given the stored state, and reads each one page by page (up
   to the stream's optional ``concurrent_partitions(ctx)`` at once, shared state kept in
   partition order: :mod:`cmis_core.sync.in_order`);
4. hands each page, mapped onto its table (:mod:`cmis_core.sync.writer`), to one writer
   through a queue of at most ``CMIS_SYNC_MAX_ROWS_IN_FLIGHT`` rows
   (:mod:`cmis_core.sync.rows_queue`), so memory stays flat whatever the size of the
   account; the writer stores queued pages in one transaction:
   their rows (bulk upsert), the state they carry, the partitions they complete and the
   webhook routes they make known (``Page.routes``, ad accounts, leads' pages and forms);
5. closes the run row and tells the ``cmis_on_sync_finished`` observers.

Errors, by type: a throttle (``RateLimited``) that outlasts the HTTP client's retries is
waited out (``retry_after``) and the unit read again from its last committed state, never
ending the run; ``Transient`` is retried a few times with back-off; ``RetryLater`` (a wait
too long to sleep) ends that unit and sets ``SyncResult.retry_after``; ``AccountFailed``
ends that account and leaves the others complete; ``Fatal`` (a paging loop included) ends
that stream for that account; ``ReauthRequired`` (after the one refresh) stops the run.

Resume after a kill: rows are idempotent upserts, and a partition's completion is
committed with its last rows, so the next run re-reads at most the partitions that were in
flight: no row is missing and none is stored twice.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import httpx2
import structlog
from sqlalchemy import select

from cmis_core.contract import Partition, Stream
from cmis_core.errors import (
    AccountFailed,
    CmisError,
    Fatal,
    PlatformError,
    RateLimited,
    ReauthRequired,
    RetryLater,
    Transient,
)
from cmis_core.http import CallCounts, Counters, http_scope
from cmis_core.store import tables
from cmis_core.sync import fanout, state
from cmis_core.sync.auth import RunAuth, TokenRenewer, TokensProvider
from cmis_core.sync.config import Progress, SyncConfig
from cmis_core.sync.in_order import InOrder, partitions_at_once
from cmis_core.sync.page_writer import DoneItem, PageItem, PageWriter
from cmis_core.sync.result import (
    ACCOUNT_FAILED,
    ACCOUNT_SKIPPED,
    FAILED,
    PARTIAL,
    SUCCEEDED,
    AccountResult,
    SyncResult,
)
from cmis_core.sync.versions import check_api_version
from cmis_core.sync.writer import Mapper, check_routes
from cmis_core.types import EntityKind, PlatformContext, SyncFinishedEvent

if TYPE_CHECKING:
    import datetime as dt

    from cmis_core.factory import Registry
    from cmis_core.http import HttpHub
    from cmis_core.settings import Settings
    from cmis_core.store import Store

__all__ = ["Progress", "SyncConfig", "sync_integration"]

log = structlog.get_logger(__name__)
T = TypeVar("T")


class _Stop(Exception):
    """The run must stop (re-authorisation needed, a configuration error)."""

    def __init__(self, error: CmisError) -> None:
        super().__init__(error.message)
        self.error = error


# ------------------------------------------------------------------------------ one run


class _Run:
    """The state of one run: context, writer, results, what is done and what failed."""

    def __init__(
        self,
        *,
        store: Store,
        ctx: PlatformContext,
        auth: RunAuth,
        writer: PageWriter,
        result: SyncResult,
        config: SyncConfig,
        done: dict[str, set[str]],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.store = store
        self.ctx = ctx
        self.auth = auth
        self.writer = writer
        self.result = result
        self.config = config
        self.done = done
        self.sleep = sleep
        self.counters: dict[str, Counters] = {}
        self.mappers: dict[EntityKind, Mapper] = {}
        self.failed_accounts: set[str] = set()

    @property
    def org_id(self) -> int:
        return self.result.org_id

    @property
    def integration_id(self) -> int:
        return self.result.integration_id

    async def db(self, work: Callable[[Any], T], *, write: bool = False) -> T:
        """Run ``work(conn)`` in an org transaction, in a thread."""

        def call() -> T:
            with self.store.org(self.org_id, write=write) as conn:
                return work(conn)

        return await asyncio.to_thread(call)

    def mapper(self, entity: EntityKind) -> Mapper:
        found = self.mappers.get(entity)
        if found is None:
            found = self.mappers[entity] = Mapper.for_entity(
                entity, platform=self.result.platform, integration_id=self.integration_id
            )
        return found

    # -------------------------------------------------------------- a unit, with retries
    async def run_unit(self, unit: fanout.Unit) -> bool:
        """Read one unit; ``True`` when it completed. Stops the run by raising ``_Stop``."""
        name = unit.stream.name
        outcome = self.result.stream(name)
        counters = self.counters.setdefault(name, Counters())
        throttles = transients = 0
        while True:
            if unit.account_id is not None and unit.account_id in self.failed_accounts:
                return False
            try:
                with http_scope(
                    account=unit.account_id,
                    on_token_rejected=self.auth.refresher,
                    counters=counters,
                ):
                    await self.read_unit(unit)
                return True
            except RetryLater as exc:
                wait = float(exc.retry_after)
                current = self.result.retry_after
                self.result.retry_after = wait if current is None else max(current, wait)
                self.unit_error(unit, exc)
                return False
            except RateLimited as exc:
                throttles += 1
                if throttles > self.config.throttle_retries:
                    self.unit_error(unit, exc)
                    return False
                wait = exc.retry_after if exc.retry_after is not None else self._backoff(throttles)
                log.info("sync.unit_throttled", unit=unit.label, wait=wait, attempt=throttles)
                await self.writer.flush()
                await self.sleep(wait)
            except Transient as exc:
                transients += 1
                if transients > self.config.transient_retries:
                    self.unit_error(unit, exc)
                    return False
                wait = exc.retry_after or self._backoff(transients)
                log.info("sync.unit_retry", unit=unit.label, wait=wait, error=exc.message)
                await self.writer.flush()
                await self.sleep(wait)
            except ReauthRequired as exc:
                raise _Stop(exc) from None
            except AccountFailed as exc:
                if unit.account_id is None:
                    raise _Stop(exc) from None
                self.account_failed(unit.account_id, exc)
                self.unit_error(unit, exc)
                return False
            except PlatformError as exc:  # Fatal, SplitRequired the stream could not split
                self.unit_error(unit, exc)
                return False
            except CmisError as exc:  # configuration or usage: the same for every unit
                raise _Stop(exc) from None
            finally:
                outcome.calls = self._count(name).calls
                outcome.throttled = self._count(name).throttled
                outcome.retries = self._count(name).retries

    def _count(self, name: str) -> CallCounts:
        return self.counters[name].platform(self.result.platform)

    def _backoff(self, attempt: int) -> float:
        return min(self.config.backoff_max, 2.0 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def unit_error(self, unit: fanout.Unit, exc: CmisError) -> None:
        unit.failed = True
        outcome = self.result.stream(unit.stream.name)
        outcome.errors += 1
        code = getattr(exc, "code", None)
        text = f"{unit.label}: {type(exc).__name__}: {exc.message}"
        if len(outcome.messages) < 20:
            outcome.messages.append(text)
        log.warning(
            "sync.unit_failed",
            stream=unit.stream.name,
            account=unit.account_id,
            error=type(exc).__name__,
            code=code,
            message=exc.message,
        )

    def account_failed(self, account_id: str, exc: CmisError) -> None:
        self.failed_accounts.add(account_id)
        self.result.accounts[account_id] = AccountResult(
            external_id=account_id, status=ACCOUNT_FAILED, error=exc.message
        )

    # -------------------------------------------------------------- reading a unit
    async def read_unit(self, unit: fanout.Unit) -> None:
        stream = unit.stream
        name = stream.name
        stored = await self.db(lambda c: state.load_state(c, self.integration_id, name))
        partitions = list(stream.partitions(self.ctx, account=unit.account, state=stored))
        keys = [p.key for p in partitions]
        if len(set(keys)) != len(keys):
            raise Fatal(f"stream {name} returned a partition key twice", code="partition_loop")
        done = self.done.setdefault(name, set())
        todo = [p for p in partitions if p.key not in done]
        width = partitions_at_once(stream, self.ctx)
        if width > 1 and len(todo) > 1:
            await self.read_at_once(stream, todo, width)
            return
        for partition in todo:
            await self.read_partition(stream, partition)

    async def read_partition(
        self, stream: Stream, partition: Partition, order: InOrder | None = None
    ) -> None:
        """Every page of one partition to the writer, then its completion."""
        name = stream.name
        mapper = self.mapper(EntityKind(stream.entity))
        outcome = self.result.stream(name)
        async for page in stream.read(self.ctx, partition):
            rows = [mapper.to_row(record) for record in page.records]
            changes = page.state
            routes = check_routes(page.routes)
            del page  # its records are mapped: keep one copy of a page in memory, not two
            outcome.pages += 1
            if changes and order is not None:
                send = functools.partial(self.put_page, name, mapper.entity, rows, routes=routes)
                await order.page(partition.key, changes, send)
                del send
            else:
                await self.put_page(name, mapper.entity, rows, changes, routes=routes)
            del rows  # the writer has the page now; don't keep it while reading the next
        await self.writer.put(DoneItem(name, partition.key, self.result.run_id))
        self.done.setdefault(name, set()).add(partition.key)
        outcome.partitions += 1
        if order is not None:
            await order.complete(
                partition.key, functools.partial(self.put_page, name, mapper.entity, [])
            )

    async def put_page(
        self,
        stream: str,
        entity: EntityKind,
        rows: list[dict[str, Any]],
        state: Mapping[str, Any] | None,
        *,
        routes: Sequence[tuple[str, str]] = (),
    ) -> None:
        """A page's rows, state and routes to the writer (nothing if it has none)."""
        if rows or state or routes:
            await self.writer.put(PageItem(stream, entity, rows, state, list(routes)))

    async def read_at_once(self, stream: Stream, todo: list[Partition], width: int) -> None:
        """Up to ``width`` partitions at once, started in order; shared state kept in order
        (:mod:`cmis_core.sync.in_order`). The first failure (in partition order) cancels
        the rest and is raised as the unit's error."""
        order = InOrder([p.key for p in todo])
        gate = asyncio.Semaphore(width)

        async def one(partition: Partition) -> None:
            async with gate:
                await self.read_partition(stream, partition, order)

        tasks = [asyncio.create_task(one(p)) for p in todo]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # -------------------------------------------------------------- the whole fan-out
    async def run_streams(self, streams: list[Stream]) -> None:
        root = fanout.account_root(streams)
        for stream in streams:
            if stream.parent is None:
                unit = fanout.Unit(stream=stream, account=None)
                if not await self.run_unit(unit) and stream is root:
                    self.result.status = FAILED
                    self.result.error = "; ".join(self.result.stream(stream.name).messages[-1:])
                    return
        await self.writer.flush()
        enabled, disabled = await self.db(self._accounts)
        for account_id in disabled:
            self.result.accounts[account_id] = AccountResult(
                external_id=account_id, status=ACCOUNT_SKIPPED
            )
        for account in enabled:
            self.result.accounts.setdefault(
                str(account["external_id"]), AccountResult(external_id=str(account["external_id"]))
            )
        accounts: list[Mapping[str, Any]] = list(enabled) if root is not None else [{}]
        todo = fanout.units(streams, accounts, root=root.name if root else None)
        if root is None:
            for unit in todo:
                unit.account = None
        by_key = {(u.stream.name, u.account_id): u for u in todo}
        queue = collections.deque(todo)
        workers = self.config.concurrency or self.ctx.platform.rate_limit.max_concurrency

        async def worker() -> None:
            while queue:
                unit = queue.popleft()
                try:
                    parent = fanout.parent_unit(unit, by_key, root.name if root else None)
                    if parent is not None:
                        await parent.done.wait()
                        if parent.failed:
                            unit.failed = True
                            continue
                    await self.run_unit(unit)
                finally:
                    unit.done.set()

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(workers, len(todo)))):
                group.create_task(worker())

    def _accounts(self, conn: Any) -> tuple[list[dict[str, Any]], list[str]]:
        enabled = state.account_records(conn, self.result.platform, self.integration_id)
        t = tables.ad_accounts
        disabled = conn.execute(
            select(t.c.external_id).where(
                t.c.org_id == self.org_id,
                t.c.platform == self.result.platform,
                t.c.integration_id == self.integration_id,
                t.c.sync_enabled.is_(False),
            )
        ).scalars()
        return enabled, [str(d) for d in disabled]


# ------------------------------------------------------------------------------ entry point


async def sync_integration(
    store: Store,
    registry: Registry,
    settings: Settings,
    *,
    org_id: int,
    platform: str,
    hub: HttpHub,
    tokens_provider: TokensProvider,
    on_token_rejected: TokenRenewer | None = None,
    streams: Sequence[str] | None = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
    today: dt.date | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SyncResult:
    """Sync organisation ``org_id``'s ``platform`` integration into ``store``.

    ``tokens_provider()`` returns the integration's current, fresh tokens;
    ``on_token_rejected(tokens)`` refreshes once after the platform refused ``tokens``
    (``None`` or ``ReauthRequired`` when the grant is gone; without it the provider is
    asked again). ``streams`` limits the run to those streams (and their parents);
    ``full_refresh`` forgets the streams' state first (watermarks, last days read).
    ``progress(stream, n)`` is called after each commit. ``today`` fixes the date the API
    version's sunset is checked against (tests).

    Raises, before anything is read or written: :class:`~cmis_core.errors.SunsetApiVersion`
    (or another ``ConfigurationError``), ``UsageError`` (no such integration, unknown
    stream), ``ReauthRequired`` (the integration already needs re-authorisation),
    ``UnknownPlatform``. Everything that happens during the run is in the returned
    :class:`~cmis_core.sync.result.SyncResult` and in its ``sync_runs`` row. The
    per-integration lock is the caller's.
    """
    record = registry.platform(platform)
    provider = registry.auth_provider(platform)
    chosen = fanout.select(registry.streams_of(platform), streams)
    platform_settings = settings.platform(platform)
    warning = check_api_version(record, platform_settings, today=today)
    config = SyncConfig.from_settings(settings)

    def begin(conn: Any) -> tuple[state.IntegrationRow, int, bool, dict[str, set[str]], Any]:
        integration = state.find_integration(conn, platform)
        run_id, resumed = state.start_run(conn, integration.id)
        if full_refresh and not resumed:
            state.clear_streams(conn, integration.id, [s.name for s in chosen])
        done = state.load_done(conn, integration.id, run_id) if resumed else {}
        return integration, run_id, resumed, done, state.run_started_at(conn, run_id)

    def begin_tx() -> tuple[state.IntegrationRow, int, bool, dict[str, set[str]], Any]:
        with store.org(org_id) as conn:
            return begin(conn)

    integration, run_id, resumed, done, started_at = await asyncio.to_thread(begin_tx)
    result = SyncResult(
        run_id=run_id,
        org_id=org_id,
        integration_id=integration.id,
        platform=platform,
        resumed=resumed,
        started_at=started_at,
        warnings=[warning] if warning else [],
    )
    for stream in chosen:
        result.stream(stream.name)
    log.info(
        "sync.run_started",
        platform=platform,
        org_id=org_id,
        run_id=run_id,
        resumed=resumed,
        streams=len(chosen),
    )
    writer = PageWriter(
        store,
        org_id=org_id,
        integration_id=integration.id,
        platform=platform,
        config=config,
        result=result,
        progress=progress,
    )
    try:
        try:
            tokens = await tokens_provider()
        except ReauthRequired as exc:
            raise _Stop(exc) from None
        auth = RunAuth(
            provider,
            platform_settings,
            tokens,
            tokens_provider=tokens_provider,
            on_token_rejected=on_token_rejected,
        )
        base = hub.context(record, platform_settings)
        async with httpx2.AsyncClient(
            transport=base.http._transport,
            auth=auth,
            timeout=base.http.timeout,
            headers=base.http.headers,
            trust_env=False,
        ) as client:
            run = _Run(
                store=store,
                ctx=attrs.evolve(base, http=client),
                auth=auth,
                writer=writer,
                result=result,
                config=config,
                done=done,
                sleep=sleep,
            )
            async with asyncio.TaskGroup() as group:
                writing = group.create_task(writer.run())
                try:
                    await run.run_streams(chosen)
                finally:
                    if not writing.done():
                        await writer.stop()
    except* _Stop as group:
        stop = group.exceptions[0]
        assert isinstance(stop, _Stop)
        result.status = FAILED
        result.error = f"{type(stop.error).__name__}: {stop.error.message}"
        result.reauth_required = isinstance(stop.error, ReauthRequired)
        log.warning("sync.run_stopped", platform=platform, run_id=run_id, error=result.error)
    except* Exception as group:
        await _finish(store, registry, result, FAILED, f"unexpected: {group.exceptions[0]!r}")
        raise
    status = result.status
    if status != FAILED:
        troubled = any(s.errors for s in result.streams.values()) or any(
            a.status == ACCOUNT_FAILED for a in result.accounts.values()
        )
        status = PARTIAL if troubled or result.retry_after is not None else SUCCEEDED
    await _finish(store, registry, result, status, result.error or _summary(result))
    return result


def _summary(result: SyncResult) -> str | None:
    messages = [m for s in result.streams.values() for m in s.messages]
    if not messages:
        return None
    more = f" (and {len(messages) - 3} more)" if len(messages) > 3 else ""
    return "; ".join(messages[:3]) + more


async def _finish(
    store: Store, registry: Registry, result: SyncResult, status: str, error: str | None
) -> None:
    """Close the run row, then tell the observers (after the commit)."""
    result.status = status

    def close() -> tuple[Any, str | None]:
        with store.org(result.org_id) as conn:
            finished = state.finish_run(
                conn,
                result.integration_id,
                result.run_id,
                status=status,
                records=result.records,
                calls=result.calls,
                error=error,
            )
        with store.system(write=False) as conn:
            slug = conn.execute(
                select(tables.organizations.c.slug).where(
                    tables.organizations.c.id == result.org_id
                )
            ).scalar()
        return finished, slug

    result.finished_at, slug = await asyncio.to_thread(close)
    log.info(
        "sync.run_finished",
        platform=result.platform,
        run_id=result.run_id,
        status=status,
        records=result.records,
        calls=result.calls,
        throttled=result.throttled,
    )
    registry.sync_finished(
        SyncFinishedEvent(
            event_id=f"sync:{result.org_id}:{result.integration_id}:{result.run_id}",
            org=slug or str(result.org_id),
            platform=result.platform,
            integration_id=str(result.integration_id),
            run_id=str(result.run_id),
            ok=status == SUCCEEDED,
            records=result.records,
            streams={n: s.records for n, s in result.streams.items()},
        )
    )
