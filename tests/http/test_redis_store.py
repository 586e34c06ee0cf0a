"""The Redis-backed governor state, against the real Redis at 127.0.0.1:6379.

Each test uses a random key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest

from cmis_core.http import HttpConfig, HttpHub, RedisStore
from cmis_core.types import RateLimitPolicy

from .conftest import Sleeps, header_usage, make_platform

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("CMIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def stores() -> AsyncIterator[Callable[[], RedisStore]]:
    """Build stores on one random prefix, as separate processes would; clean up after."""
    prefix = f"cmis-test-{secrets.token_hex(6)}:"
    built: list[RedisStore] = []

    def build() -> RedisStore:
        store = RedisStore(REDIS_URL, prefix=prefix)
        built.append(store)
        return store

    yield build
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    for store in built:
        await store.aclose()


async def test_one_bucket_across_processes(stores: Callable[[], RedisStore]) -> None:
    first, second = stores(), stores()
    take = {"rate": 2.0, "burst": 3, "max_wait": 5.0}
    waits = [await store.take("acme:app:app", **take) for store in (first, second, first)]
    assert waits == [0.0, 0.0, 0.0]
    reserved = await second.take("acme:app:app", **take)
    assert 0.4 <= reserved <= 0.5  # the bucket is empty: the next token in 1/rate s
    refused = await first.take("acme:app:app", rate=2.0, burst=3, max_wait=0.1)
    assert 0.9 <= refused <= 1.0  # too long: nothing taken ...
    after = await second.take("acme:app:app", **take)
    assert 0.9 <= after <= 1.0  # ... so the next caller gets that same slot


async def test_usage_and_pauses_are_shared(stores: Callable[[], RedisStore]) -> None:
    writer, reader = stores(), stores()
    await writer.record_usage("meta:1:app", 0.93)
    until = time.time() + 10
    await writer.pause("meta:1:account:act_1", until)
    await writer.pause("meta:1:account:act_1", until - 5)  # an earlier end does not shorten it
    app, account, unknown = await reader.read(
        ["meta:1:app", "meta:1:account:act_1", "meta:1:account:act_2"]
    )
    assert app.used == 0.93 and app.seen_at is not None and time.time() - app.seen_at < 5
    assert app.paused_until is None
    assert account.used is None and account.paused_until == pytest.approx(until)
    assert unknown.used is None and unknown.paused_until is None


async def test_a_pause_seen_by_one_worker_holds_back_another(
    stores: Callable[[], RedisStore],
) -> None:
    def throttling(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"x-usage": "1.0", "x-regain": "30"})

    platform = make_platform(
        usage=header_usage, policy=RateLimitPolicy(calls_per_second=100, burst=100)
    )
    calls: list[httpx2.Request] = []

    def quiet(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, headers={"x-usage": "0.1"})

    sleeps = Sleeps()
    config = HttpConfig(max_inline_wait=60)
    async with (
        HttpHub(config, transport=httpx2.MockTransport(throttling), store=stores()) as one,
        HttpHub(
            config, transport=httpx2.MockTransport(quiet), store=stores(), sleep=sleeps
        ) as other,
    ):
        await one.client(platform, app="42").get("https://api.example.test/a")
        await other.client(platform, app="42").get("https://api.example.test/b")
        await other.client(platform, app="43").get("https://api.example.test/c")
    assert len(sleeps) == 1 and 28 <= sleeps[0] <= 30  # app 42 paused; app 43 not
    assert len(calls) == 2
