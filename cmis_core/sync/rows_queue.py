"""The queue between a run's readers and its writer, bounded by the rows it holds.

Pages differ by platform (100 Google rows, 1,000 Meta insights, a state-only checkpoint),
so a bound counted in pages bounds nothing: memory follows rows. :class:`RowsQueue` admits
an item while the rows held stay within ``max_rows`` and the items within ``max_items``.
An item is held from :meth:`~RowsQueue.put` until the writer says it is stored
(:meth:`~RowsQueue.done`), not only while it waits, so the bound is on rows read and not
yet stored. An item larger than ``max_rows`` is let in when nothing is held, so a big page
never waits for ever. Readers are admitted strictly in the order they asked.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class RowsQueue(Generic[T]):
    """A FIFO queue holding at most ``max_rows`` rows and ``max_items`` items until done."""

    def __init__(self, *, max_rows: int, max_items: int) -> None:
        if max_rows < 1 or max_items < 1:
            raise ValueError("a queue must hold at least one row and one item")
        self.max_rows = max_rows
        self.max_items = max_items
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._rows = 0  # rows queued or admitted (a putter woken but not yet run)
        self._slots = 0  # items queued or admitted
        self._putters: collections.deque[tuple[asyncio.Future[None], int]] = collections.deque()
        self._getter: asyncio.Future[None] | None = None

    @property
    def rows(self) -> int:
        """Rows held: queued, taken and not yet done, or admitted and about to be queued."""
        return self._rows

    def empty(self) -> bool:
        return not self._items

    async def put(self, item: T, rows: int) -> None:
        """Queue ``item`` of ``rows`` rows, once it fits and every earlier reader is in."""
        if self._putters or not self._fits(rows):
            entry = (asyncio.get_running_loop().create_future(), rows)
            self._putters.append(entry)
            try:
                await entry[0]  # admitted: its rows and slot are reserved
            except asyncio.CancelledError:
                if entry[0].done() and not entry[0].cancelled():
                    self.done(rows)
                else:
                    if entry in self._putters:
                        self._putters.remove(entry)
                    self._admit()  # it may have been the head blocking the next
                raise
        else:
            self._rows += rows
            self._slots += 1
        self._items.append((item, rows))
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    async def get(self) -> T:
        """The oldest item, waiting for one (one reader of the queue at a time)."""
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self.get_nowait()

    def get_nowait(self) -> T:
        """The oldest item; ``IndexError`` when there is none. Its rows stay held until
        :meth:`done`."""
        return self._items.popleft()[0]

    def done(self, rows: int, items: int = 1) -> None:
        """``items`` taken items of ``rows`` rows in all are stored: make room for more."""
        self._rows -= rows
        self._slots -= items
        self._admit()

    def _fits(self, rows: int) -> bool:
        if self._slots == 0:
            return True
        return self._slots < self.max_items and self._rows + rows <= self.max_rows

    def _admit(self) -> None:
        while self._putters and self._fits(self._putters[0][1]):
            future, rows = self._putters.popleft()
            if future.done():  # cancelled while waiting
                continue
            self._rows += rows
            self._slots += 1
            future.set_result(None)
