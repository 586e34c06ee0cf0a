"""A streamed answer: its body handed over as it arrives, counted, errors still classified."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import structlog

from cmis_core.errors import Fatal, Transient
from cmis_core.http import STREAM, http_scope
from cmis_core.types import RateLimitPolicy

from .conftest import make_platform

URL = "https://api.example.test/v1/report"


class Body(httpx2.AsyncByteStream):
    """A body sent in parts, waiting on ``gate`` before the last one; ``fail`` breaks it."""

    def __init__(self, parts: list[bytes], *, fail: bool = False) -> None:
        self.parts = parts
        self.fail = fail
        self.gate = asyncio.Event()
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts[:-1]:
            yield part
        await self.gate.wait()
        if self.fail:
            raise httpx2.ReadError("connection reset")
        yield self.parts[-1]

    async def aclose(self) -> None:
        self.closed = True


async def test_the_body_arrives_in_parts_and_the_slot_is_free_once_the_headers_are_in(
    hub_for: Any,
) -> None:
    body = Body([b'{"data": [1,', b" 2]}"])

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/other"):
            return httpx2.Response(200, json={"ok": True})
        return httpx2.Response(200, stream=body, headers={"X-Usage": "0.5"})

    one_at_a_time = RateLimitPolicy(calls_per_second=1000, burst=1000, max_concurrency=1)
    async with hub_for(handler) as hub:
        client = hub.client(make_platform(policy=one_at_a_time))
        with http_scope(account="act_1"):
            async with client.stream("GET", URL, extensions={STREAM: True}) as response:
                parts = response.aiter_raw()
                assert await anext(parts) == b'{"data": [1,'
                # the one concurrency slot is free while the rest of the body is awaited
                other = await asyncio.wait_for(client.get(f"{URL}/other"), 1)
                assert other.json() == {"ok": True}
                body.gate.set()
                assert [p async for p in parts] == [b" 2]}"]
        counts = hub.counters.account("acme", "act_1")
    assert body.closed
    other_body = len(b'{"ok":true}')
    assert (counts.calls, counts.bytes_received) == (2, len(b'{"data": [1, 2]}') + other_body)


async def test_an_error_answer_is_read_whole_and_classified(hub_for: Any) -> None:
    def classify(response: httpx2.Response) -> Any:
        if response.status_code == 400:
            return Fatal(response.json()["error"])
        return None

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = Body([b'{"error": ', b'"bad field"}'])
        body.gate.set()
        return httpx2.Response(400, stream=body)

    async with hub_for(handler) as hub:
        client = hub.client(make_platform(classify=classify))
        with pytest.raises(Fatal, match="bad field"):
            async with client.stream("GET", URL, extensions={STREAM: True}):
                raise AssertionError("an error answer is raised before its body is handed over")


async def test_a_failure_while_the_body_is_read_is_transient(hub_for: Any) -> None:
    body = Body([b'{"data": [1,', b" 2]}"], fail=True)
    body.gate.set()
    async with hub_for(lambda request: httpx2.Response(200, stream=body)) as hub:
        client = hub.client(make_platform())
        async with client.stream("GET", URL, extensions={STREAM: True}) as response:
            with pytest.raises(Transient, match="ReadError while reading the answer"):
                async for _ in response.aiter_raw():
                    pass
    assert body.closed


async def test_without_the_extension_the_answer_is_read_whole_as_before(hub_for: Any) -> None:
    body = Body([b'{"data": [1,', b" 2]}"])
    body.gate.set()
    async with hub_for(lambda request: httpx2.Response(200, stream=body)) as hub:
        client = hub.client(make_platform())
        response = await client.get(URL)
    assert response.json() == {"data": [1, 2]}
    assert body.closed


async def test_a_compressed_answer_is_decoded_as_it_arrives(hub_for: Any) -> None:
    import gzip
    import json

    from cmis_core.settings import PlatformSettings
    from cmis_core.sync.paging import json_chunks
    from cmis_core.types import PlatformContext

    rows = [{"id": str(i), "name": f"Campagne été {i}"} for i in range(250)]
    packed = gzip.compress(json.dumps({"data": rows, "paging": {"next": None}}).encode())
    parts = [packed[at : at + 1000] for at in range(0, len(packed), 1000)]
    body = Body(parts)
    body.gate.set()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, stream=body, headers={"Content-Encoding": "gzip"})

    async with hub_for(handler) as hub:
        platform = make_platform()
        ctx = PlatformContext(
            platform=platform,
            settings=PlatformSettings(platform="acme", environ={}),
            http=hub.client(platform),
            log=structlog.get_logger(),
        )
        rest: dict[str, Any] = {}
        chunks = [c async for c in json_chunks(ctx, "GET", URL, member="data", rest=rest, size=100)]
        counts = hub.counters.platform("acme")
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert [r for c in chunks for r in c] == rows and rest == {"paging": {"next": None}}
    assert counts.bytes_received == len(packed)  # counted as received, before decoding
