"""The governor against a real rate-limited server on loopback (uvicorn in a thread).

The server is a token bucket (``CAPACITY`` calls, refilled at ``RATE``/s) that reports its
usage in a header after every call and answers 429 past the limit. Over a few seconds the
client must use at least 90 % of the budget with no throttle answer at all.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cmis_core.http import HttpHub, MemoryStore
from cmis_core.types import RateLimitPolicy

from .conftest import header_usage, make_platform

CAPACITY = 20
RATE = 40.0  # tokens per second
WINDOW = 3.0  # seconds of load


class BucketServer:
    """A token-bucket API: 200 with ``X-Usage`` while tokens last, else 429 + Retry-After."""

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens, self.stamp = float(capacity), time.monotonic()
        self.accepted = self.throttled = 0
        self.first: float | None = None
        self.last = 0.0
        self.app = Starlette(routes=[Route("/v1/items", self.items)])

    async def items(self, request: Request) -> JSONResponse:
        now = time.monotonic()
        self.first = self.first if self.first is not None else now
        self.last = now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            self.throttled += 1
            wait = (1 - self.tokens) / self.rate
            headers = {"Retry-After": f"{wait:.3f}", "X-Usage": "1.0"}
            return JSONResponse({"error": "throttled"}, status_code=429, headers=headers)
        self.tokens -= 1
        self.accepted += 1
        used = 1 - self.tokens / self.capacity
        return JSONResponse({"data": []}, headers={"X-Usage": f"{used:.4f}"})

    def budget(self) -> float:
        """Calls the bucket allowed between the first and the last request."""
        assert self.first is not None
        return self.capacity + (self.last - self.first) * self.rate


@pytest.fixture
def server() -> Iterator[tuple[BucketServer, str]]:
    api = BucketServer(CAPACITY, RATE)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(api.app, log_level="warning", access_log=False, lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "the loopback server did not start"
        time.sleep(0.01)
    yield api, f"http://127.0.0.1:{port}"
    runner.should_exit = True
    thread.join(timeout=10)
    sock.close()


async def test_the_governor_uses_the_budget_without_being_throttled(
    server: tuple[BucketServer, str],
) -> None:
    api, base = server
    policy = RateLimitPolicy(calls_per_second=RATE, burst=CAPACITY, max_concurrency=4)
    platform = make_platform(name="bucket", usage=header_usage, policy=policy)
    async with HttpHub(store=MemoryStore()) as hub:
        client = hub.client(platform)
        stop = time.monotonic() + WINDOW

        async def worker() -> None:
            while time.monotonic() < stop:
                response = await client.get(f"{base}/v1/items")
                assert response.status_code == 200

        await asyncio.gather(*[worker() for _ in range(4)])
        counts = hub.counters.platform("bucket")
    share = api.accepted / api.budget()
    assert api.throttled == 0 and counts.throttled == 0
    assert share >= 0.9, f"used {share:.0%} of the budget ({api.accepted}/{api.budget():.0f})"
    assert counts.calls == api.accepted


async def test_without_the_governor_the_same_load_is_throttled(
    server: tuple[BucketServer, str],
) -> None:
    """The control: a plain httpx2 client at the same concurrency hits the limit."""
    api, base = server
    async with httpx2.AsyncClient() as client:
        stop = time.monotonic() + 1.0

        async def worker() -> None:
            while time.monotonic() < stop:
                await client.get(f"{base}/v1/items")

        await asyncio.gather(*[worker() for _ in range(4)])
    assert api.throttled > 0
