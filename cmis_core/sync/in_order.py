"""Partitions of one unit read at once, their shared state still committed in order.

A stream may let the engine read several of an account's partitions at once (its
``concurrent_partitions(ctx)``; Meta's async report runs, say). Rows are idempotent and go
to the writer as they are read. State is split by key: a key that contains the partition's
key (``inflight:<partition key>``) is the partition's own and is committed with its pages
at once, so a checkpoint is never late; any other key (a watermark such as
``metrics_until:<account>``) is *shared*, and is held back until every partition before it
has completed, so a watermark never moves past a partition that is still being read. If the
run stops first, the held state is dropped: the next run re-reads from the old watermark,
and nothing is missed.

The decision and the hand-over to the writer are one step (:meth:`InOrder.page` and
:meth:`InOrder.complete` hold a lock across both): the writer's queue is bounded, and a
partition that found it full must not be overtaken by a later partition's watermark that
was decided after its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from cmis_core.errors import PluginError


class InOrder:
    """Which state of concurrently read partitions may be committed now."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = list(keys)
        self._next = 0  # index of the oldest partition not completed
        self._completed: set[str] = set()
        self._held: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def page(
        self,
        key: str,
        changes: Mapping[str, Any],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        """Send what :meth:`now` frees of a page's state; no other partition's state is
        decided until it is handed over."""
        async with self._lock:
            await send(self.now(key, changes))

    async def complete(self, key: str, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Send, oldest first, the held state :meth:`completed` frees."""
        async with self._lock:
            for held in self.completed(key):
                await send(held)

    def now(self, key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a page's state of partition ``key`` to commit with the page; the
        shared rest is held while an earlier partition is open (or earlier state of this
        one is held, so a later value cannot be overtaken by an older one)."""
        own = {k: v for k, v in changes.items() if key in k}
        shared = {k: v for k, v in changes.items() if key not in k}
        if not shared:
            return own
        if key in self._held or self._oldest() != key:
            self._held.setdefault(key, {}).update(shared)
            return own
        return {**own, **shared}

    def completed(self, key: str) -> list[dict[str, Any]]:
        """Partition ``key`` is done: the held state now free to commit, oldest first."""
        self._completed.add(key)
        free: list[dict[str, Any]] = []
        while self._next < len(self._keys) and self._keys[self._next] in self._completed:
            held = self._held.pop(self._keys[self._next], None)
            if held:
                free.append(held)
            self._next += 1
        return free

    def _oldest(self) -> str | None:
        return self._keys[self._next] if self._next < len(self._keys) else None


def partitions_at_once(stream: Any, ctx: Any) -> int:
    """How many of a unit's partitions ``stream`` lets the engine read at once: its optional
    ``concurrent_partitions(ctx)``, else 1. Anything but a positive int is a plugin error."""
    method = getattr(stream, "concurrent_partitions", None)
    if method is None:
        return 1
    width = method(ctx)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise PluginError(
            f"stream {stream.name}: concurrent_partitions() returned {width!r}, not a positive int"
        )
    return width
