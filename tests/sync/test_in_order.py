"""Partitions read at once: their own state at once, shared state in partition order."""

from __future__ import annotations

import asyncio

import pytest

from cmis_core.errors import PluginError
from cmis_core.sync.in_order import InOrder, partitions_at_once

KEYS = ["a:1..7", "a:8..14", "a:15..21"]


def test_own_state_goes_at_once_and_shared_state_waits_for_earlier_partitions() -> None:
    order = InOrder(KEYS)
    # the second partition checkpoints its run and finishes first
    assert order.now("a:8..14", {"inflight:a:8..14": {"run": 2}}) == {
        "inflight:a:8..14": {"run": 2}
    }
    assert order.now("a:8..14", {"inflight:a:8..14": None, "until:a": "14"}) == {
        "inflight:a:8..14": None
    }
    assert order.completed("a:8..14") == []  # the first is still open: the watermark waits
    # the oldest partition's shared state is committed with its page
    assert order.now("a:1..7", {"until:a": "7"}) == {"until:a": "7"}
    assert order.completed("a:1..7") == [{"until:a": "14"}]  # then the second's, in order
    assert order.now("a:15..21", {"until:a": "21"}) == {"until:a": "21"}
    assert order.completed("a:15..21") == []


def test_held_state_of_a_partition_is_never_overtaken_by_its_own_later_state() -> None:
    order = InOrder(KEYS)
    assert order.now("a:8..14", {"mark": 1}) == {}  # held: the first partition is open
    assert order.completed("a:1..7") == []
    # now the oldest, but its earlier value is still held: the later one joins it
    assert order.now("a:8..14", {"mark": 2}) == {}
    assert order.completed("a:8..14") == [{"mark": 2}]


def test_a_partition_that_never_completes_keeps_later_shared_state_back() -> None:
    order = InOrder(KEYS)
    order.now("a:15..21", {"until:a": "21"})
    assert order.completed("a:15..21") == []
    assert order.completed("a:8..14") == []  # the first failed: nothing shared is released


class _Stream:
    name = "metrics"

    def __init__(self, width: object) -> None:
        self.width = width

    def concurrent_partitions(self, ctx: object) -> object:
        return self.width


def test_partitions_at_once_is_optional_and_checked() -> None:
    assert partitions_at_once(object(), None) == 1
    assert partitions_at_once(_Stream(3), None) == 3
    for bad in (0, -1, True, "3", 2.0):
        with pytest.raises(PluginError, match="concurrent_partitions"):
            partitions_at_once(_Stream(bad), None)


async def test_a_later_watermark_is_never_handed_over_before_an_earlier_freed_one() -> None:
    """The writer's queue is bounded: the partition that completes the oldest one may wait
    to hand over the state it freed. A later partition's page decided meanwhile must queue
    behind it, or the older watermark would be committed last."""
    order = InOrder(KEYS)
    sent: list[dict[str, object]] = []
    queue_full = asyncio.Event()

    async def slow_send(state: dict[str, object]) -> None:
        await queue_full.wait()  # the writer's queue is full for now
        sent.append(state)

    async def send(state: dict[str, object]) -> None:
        sent.append(state)

    await order.page("a:8..14", {"until:a": "14"}, send)  # held: the first is open
    await order.complete("a:8..14", send)
    assert sent == [{}]
    oldest = asyncio.create_task(order.complete("a:1..7", slow_send))
    await asyncio.sleep(0)  # it freed the second's watermark and waits on the full queue
    later = asyncio.create_task(order.page("a:15..21", {"until:a": "21"}, send))
    await asyncio.sleep(0.01)
    assert sent == [{}]  # the third's page, decided now, did not overtake the hand-over
    queue_full.set()
    await asyncio.gather(oldest, later)
    marks = [s["until:a"] for s in sent if s]
    assert marks == ["14", "21"]
