"""The paging loops: each shape reads every page once, stops at the end, refuses to loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import structlog

from cmis_core.errors import Fatal, RateLimited, TokenRejected, Transient
from cmis_core.settings import PlatformSettings
from cmis_core.sync.paging import (
    cursor_pages,
    link_pages,
    mapped,
    offset_pages,
    page_token_pages,
    paginate,
    request_json,
)
from cmis_core.types import Platform, PlatformContext

ITEMS = list(range(23))


def context(
    handler: Callable[[httpx2.Request], httpx2.Response], **platform: Any
) -> PlatformContext:
    return PlatformContext(
        platform=Platform(
            name="demo",
            display_name="Demo",
            api_version="v1",
            base_url="https://d.example",
            **platform,
        ),
        settings=PlatformSettings(platform="demo", environ={}),
        http=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        log=structlog.get_logger(),
    )


async def collect(pages: Any) -> list[Any]:
    return [item async for page in pages for item in page]


# every shape also reads its pages as they arrive (``chunk``): same items, same calls
CHUNKS = pytest.mark.parametrize("chunk", [None, 4])


async def sizes(pages: Any) -> list[int]:
    return [len(page) async for page in pages]


@CHUNKS
async def test_cursor_pages_follow_after_until_next_disappears(chunk: int | None) -> None:
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        after = request.url.params.get("after")
        seen.append(after)
        start = int(after or 0)
        body: dict[str, Any] = {
            "data": ITEMS[start : start + 10],
            "paging": {"cursors": {"after": str(start + 10)}},
        }
        if start + 10 < len(ITEMS):
            body["paging"]["next"] = "https://d.example/next"
        return httpx2.Response(200, json=body)

    ctx = context(handler)
    pages = cursor_pages(ctx, "https://d.example/x", params={"limit": 10}, chunk=chunk)
    assert await collect(pages) == ITEMS
    assert seen == [None, "10", "20"]
    pages = cursor_pages(ctx, "https://d.example/x", params={"limit": 10}, chunk=chunk)
    assert await sizes(pages) == ([10, 10, 3] if chunk is None else [4, 4, 2, 4, 4, 2, 3])


@CHUNKS
async def test_a_repeated_cursor_is_fatal_not_an_endless_loop(chunk: int | None) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, json={"data": [1], "paging": {"cursors": {"after": "same"}, "next": "n"}}
        )

    with pytest.raises(Fatal) as caught:
        await collect(cursor_pages(context(handler), "https://d.example/x", chunk=chunk))
    assert caught.value.code == "paging_loop"


@CHUNKS
async def test_page_tokens_in_the_query_or_a_json_body(chunk: int | None) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            token = json.loads(request.content).get("pageToken")
        else:
            token = request.url.params.get("pageToken")
        start = int(token or 0)
        body: dict[str, Any] = {"results": ITEMS[start : start + 7]}
        if start + 7 < len(ITEMS):
            body["nextPageToken"] = str(start + 7)
        return httpx2.Response(200, json=body)

    ctx = context(handler)
    assert await collect(page_token_pages(ctx, "https://d.example/q", chunk=chunk)) == ITEMS
    posted = page_token_pages(
        ctx, "https://d.example/q", method="POST", json={"query": "SELECT"}, chunk=chunk
    )
    assert await collect(posted) == ITEMS


@CHUNKS
async def test_offset_pages_stop_on_a_short_page_or_the_total(chunk: int | None) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        start, count = int(request.url.params["start"]), int(request.url.params["count"])
        calls.append(start)
        return httpx2.Response(
            200, json={"elements": ITEMS[start : start + count], "paging": {"total": 23}}
        )

    ctx = context(handler)
    assert await collect(offset_pages(ctx, "https://d.example/o", limit=10, chunk=chunk)) == ITEMS
    assert calls == [0, 10, 20]
    calls.clear()
    exact = offset_pages(
        ctx, "https://d.example/o", limit=23, total=lambda b: b["paging"]["total"], chunk=chunk
    )
    assert await collect(exact) == ITEMS
    assert calls == [0]  # the total said there was no more: no empty extra call


@CHUNKS
async def test_next_links_are_followed_as_given(chunk: int | None) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        page = int(request.url.params.get("page", 0))
        body: dict[str, Any] = {"data": [page]}
        if page < 2:
            body["paging"] = {"next": f"https://d.example/l?page={page + 1}&access_token=t"}
        return httpx2.Response(200, json=body)

    pages = link_pages(context(handler), "https://d.example/l", chunk=chunk)
    assert await collect(pages) == [0, 1, 2]


async def test_pages_read_in_chunks_classify_errors_and_refuse_a_broken_body() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/throttled":
            return httpx2.Response(429, headers={"Retry-After": "7"})
        return httpx2.Response(200, text='{"data": [1, 2, 3], "paging": {"next": ')

    ctx = context(handler)
    with pytest.raises(RateLimited) as throttled:
        await collect(cursor_pages(ctx, "https://d.example/throttled", chunk=2))
    assert throttled.value.retry_after == 7
    pages = cursor_pages(ctx, "https://d.example/cut", chunk=2)
    assert await anext(pages) == [1, 2]  # what came whole is read, then the cut is an error
    with pytest.raises(Transient, match="not the JSON expected"):
        await collect(pages)
    with pytest.raises(TypeError, match="member"):
        cursor_pages(ctx, "https://d.example/x", items=lambda body: body["data"], chunk=2)


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (401, {}, TokenRejected),
        (429, {"Retry-After": "7"}, RateLimited),
        (503, {}, Transient),
        (400, {}, Fatal),
    ],
)
async def test_errors_are_classified_with_a_generic_fallback(
    status: int, headers: dict[str, str], error: type
) -> None:
    ctx = context(lambda r: httpx2.Response(status, headers=headers, json={}))
    with pytest.raises(error) as caught:
        await request_json(ctx, "GET", "https://d.example/x")
    if error is RateLimited:
        assert caught.value.retry_after == 7


async def test_the_platform_classify_comes_first_and_network_errors_are_transient() -> None:
    def classify(response: httpx2.Response) -> Fatal | None:
        return Fatal("custom", code="x") if response.status_code == 200 else None

    ctx = context(lambda r: httpx2.Response(200, json={}), classify=classify)
    with pytest.raises(Fatal, match="custom"):
        await request_json(ctx, "GET", "https://d.example/x")

    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(Transient):
        await request_json(context(down), "GET", "https://d.example/x")


async def test_a_mapped_page_is_freed_while_the_stream_waits() -> None:
    import gc
    import weakref

    class Item:
        pass

    alive: list[weakref.ref[Item]] = []

    async def fetch(token: str | None) -> tuple[list[Any], str | None]:
        items = [Item() for _ in range(3)]
        alive.extend(weakref.ref(i) for i in items)
        return items, None if token else "next"

    ctx = context(lambda request: httpx2.Response(200))
    pages = paginate(ctx, fetch)
    items = await anext(pages)
    records = mapped(items, lambda item: {"kind": type(item).__name__})
    assert records == [{"kind": "Item"}] * 3 and items == []
    gc.collect()
    # the loop is suspended at its yield, still holding the (now empty) list: no item lives
    assert [ref() for ref in alive] == [None, None, None]
    await pages.aclose()


class _Broken(httpx2.AsyncByteStream):
    """A body that breaks off after its first part, as a reset connection does."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self) -> Any:
        yield self.first
        raise httpx2.ReadError("connection reset by peer")


async def test_an_answer_that_breaks_off_is_asked_for_again_and_then_given_up() -> None:
    whole = json.dumps({"data": [1, 2, 3, 4, 5], "paging": {}}).encode()
    calls: list[int] = []
    breaks = {"left": 1}

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if breaks["left"] > 0:
            breaks["left"] -= 1
            return httpx2.Response(200, stream=_Broken(whole[:20]))
        return httpx2.Response(200, content=whole)

    ctx = context(handler)
    chunks = [c async for c in cursor_pages(ctx, "https://d.example/x", chunk=2)]
    # what came before the break comes again: writes are idempotent
    assert chunks == [[1, 2], [1, 2], [3, 4], [5]]
    assert len(calls) == 2
    calls.clear()
    breaks["left"] = 10
    with pytest.raises(Transient, match="ReadError"):
        await collect(cursor_pages(ctx, "https://d.example/x", chunk=2))
    assert len(calls) == 3  # BODY_ATTEMPTS, then the engine's unit retry takes over
