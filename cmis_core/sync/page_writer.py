"""The one task of a sync run that stores pages: a queue bounded by rows in
(:class:`~cmis_core.sync.rows_queue.RowsQueue`), one transaction per batch out
(:class:`PageWriter`), and the items readers put on its queue."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from cmis_core.sync import state
from cmis_core.sync.rows_queue import RowsQueue
from cmis_core.sync.writer import Batch, disable_accounts, write_batch
from cmis_core.types import EntityKind

if TYPE_CHECKING:
    from cmis_core.store import Store
    from cmis_core.sync.config import Progress, SyncConfig
    from cmis_core.sync.result import SyncResult


@attrs.frozen
class PageItem:
    stream: str
    entity: EntityKind
    rows: list[dict[str, Any]]
    state: Mapping[str, Any] | None
    routes: list[tuple[str, str]] = attrs.field(factory=list)


@attrs.frozen
class DoneItem:
    stream: str
    partition: str
    run_id: int


@attrs.frozen
class FlushItem:
    future: asyncio.Future[None]


Item = PageItem | DoneItem | FlushItem
STOP = object()


class PageWriter:
    """The one task that stores pages: a bounded queue in, one transaction per batch out."""

    def __init__(
        self,
        store: Store,
        *,
        org_id: int,
        integration_id: int,
        platform: str,
        config: SyncConfig,
        result: SyncResult,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.org_id = org_id
        self.integration_id = integration_id
        self.platform = platform
        self.config = config
        self.result = result
        self.progress = progress
        self.queue: RowsQueue[Item | object] = RowsQueue(
            max_rows=config.max_rows_in_flight, max_items=config.max_pages_in_flight
        )
        self.on_new_accounts = None if config.new_accounts_enabled else disable_accounts(platform)

    async def put(self, item: Item) -> None:
        await self.queue.put(item, len(item.rows) if isinstance(item, PageItem) else 0)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.queue.put(FlushItem(future), 0)
        await future

    async def stop(self) -> None:
        await self.queue.put(STOP, 0)

    async def run(self) -> None:
        while True:
            first = await self.queue.get()
            if first is STOP:
                return
            items: list[Any] = [first]
            rows = len(first.rows) if isinstance(first, PageItem) else 0
            stop = False
            while rows < self.config.batch_rows and not self.queue.empty():
                more = self.queue.get_nowait()
                if more is STOP:
                    stop = True
                    break
                items.append(more)
                if isinstance(more, PageItem):
                    rows += len(more.rows)
            await self._commit(items)
            self.queue.done(rows, len(items))
            if stop:
                return

    async def _commit(self, items: list[Any]) -> None:
        batch = Batch()
        counts: collections.Counter[str] = collections.Counter()
        for item in items:
            if isinstance(item, PageItem):
                batch.add_rows(item.entity, item.rows)
                counts[item.stream] += len(item.rows)
                if item.state:
                    batch.add_state(item.stream, item.state)
                batch.add_routes(item.routes)
            elif isinstance(item, DoneItem):
                batch.add_state(item.stream, {state.DONE + item.partition: {"run": item.run_id}})
        if batch.rows or batch.state or batch.routes:
            await asyncio.to_thread(self._write, batch)
        for name, n in counts.items():
            self.result.stream(name).records += n
            if self.progress is not None:
                self.progress(name, n)
        for item in items:
            if isinstance(item, FlushItem) and not item.future.done():
                item.future.set_result(None)

    def _write(self, batch: Batch) -> None:
        with self.store.org(self.org_id) as conn:
            write_batch(
                conn,
                batch,
                integration_id=self.integration_id,
                platform=self.platform,
                on_new_accounts=self.on_new_accounts,
            )
