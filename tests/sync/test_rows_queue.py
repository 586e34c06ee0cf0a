"""The writer's queue: bounded by rows and items until stored, a big page let in alone,
readers in order."""

from __future__ import annotations

import asyncio

import pytest

from cmis_core.sync.rows_queue import RowsQueue


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_page_waits_until_the_rows_before_it_are_stored_not_only_taken() -> None:
    queue: RowsQueue[str] = RowsQueue(max_rows=100, max_items=10)
    await queue.put("a", 60)
    waiting = asyncio.create_task(queue.put("b", 50))
    await settle()
    assert not waiting.done() and queue.rows == 60
    assert queue.get_nowait() == "a"  # taken by the writer, being written
    await settle()
    assert not waiting.done()  # its rows are still in memory
    queue.done(60)
    await settle()
    assert waiting.done() and queue.rows == 50
    assert await queue.get() == "b"


async def test_items_are_bounded_too_and_state_only_items_count_as_items() -> None:
    queue: RowsQueue[str] = RowsQueue(max_rows=100, max_items=2)
    await queue.put("done-1", 0)
    await queue.put("done-2", 0)
    third = asyncio.create_task(queue.put("done-3", 0))
    await settle()
    assert not third.done()
    queue.get_nowait()
    queue.get_nowait()
    queue.done(0, items=2)
    await settle()
    assert third.done()


async def test_a_page_bigger_than_the_bound_goes_alone() -> None:
    queue: RowsQueue[str] = RowsQueue(max_rows=100, max_items=10)
    await queue.put("small", 10)
    big = asyncio.create_task(queue.put("big", 500))
    await settle()
    assert not big.done()  # not beside another page
    queue.get_nowait()
    queue.done(10)
    await settle()
    assert big.done() and queue.rows == 500  # alone: it never waits for ever
    after = asyncio.create_task(queue.put("next", 1))
    await settle()
    assert not after.done()
    assert queue.get_nowait() == "big"
    queue.done(500)
    await settle()
    assert after.done()


async def test_readers_are_admitted_in_the_order_they_asked() -> None:
    queue: RowsQueue[str] = RowsQueue(max_rows=100, max_items=10)
    await queue.put("first", 100)
    big = asyncio.create_task(queue.put("big", 90))
    await settle()
    small = asyncio.create_task(queue.put("small", 5))  # would fit, but big asked first
    await settle()
    assert not small.done()
    queue.get_nowait()
    queue.done(100)
    await settle()
    assert big.done() and small.done()
    assert [queue.get_nowait(), queue.get_nowait()] == ["big", "small"]


async def test_a_cancelled_reader_gives_its_place_back() -> None:
    queue: RowsQueue[str] = RowsQueue(max_rows=100, max_items=10)
    await queue.put("first", 50)
    big = asyncio.create_task(queue.put("big", 90))
    small = asyncio.create_task(queue.put("small", 5))
    await settle()
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big
    await settle()
    assert small.done()  # not held behind the cancelled head
    assert queue.rows == 55
    assert [queue.get_nowait(), queue.get_nowait()] == ["first", "small"]
    queue.done(55, items=2)
    assert queue.rows == 0 and queue.empty()


async def test_get_waits_for_an_item() -> None:
    queue: RowsQueue[str] = RowsQueue(max_rows=10, max_items=1)
    getting = asyncio.create_task(queue.get())
    await settle()
    assert not getting.done()
    await queue.put("x", 3)
    assert await getting == "x"
    with pytest.raises(IndexError):
        queue.get_nowait()


def test_a_queue_holds_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RowsQueue(max_rows=0, max_items=1)
