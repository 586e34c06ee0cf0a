"""The rate governor: spacing from usage readings, pauses, token buckets, concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from cmis_core.errors import RetryLater
from cmis_core.http import ACCOUNT, HttpConfig, pacing_delay
from cmis_core.http.governor import adapt_interval
from cmis_core.types import RateLimitPolicy

from .conftest import Sleeps, header_usage, make_platform

URL = "https://api.example.test/v1/insights"
POLICY = RateLimitPolicy(calls_per_second=10, burst=5, slow_down_at=0.75, max_concurrency=4)


def test_pacing_is_free_below_the_threshold_and_grows_towards_the_limit() -> None:
    assert pacing_delay(0.0, POLICY, max_pace=5) == 0
    assert pacing_delay(0.74, POLICY, max_pace=5) == 0
    # halfway between slow_down_at and 100 %: one nominal call interval
    assert pacing_delay(0.875, POLICY, max_pace=5) == pytest.approx(0.1)
    delays = [pacing_delay(u / 100, POLICY, max_pace=5) for u in range(75, 101)]
    assert delays == sorted(delays)
    assert pacing_delay(0.99, POLICY, max_pace=5) == pytest.approx(2.4)
    assert pacing_delay(0.999, POLICY, max_pace=5) == 5  # the cap
    assert pacing_delay(1.0, POLICY, max_pace=3) == pacing_delay(1.3, POLICY, max_pace=3) == 3


def test_the_learned_interval_steers_usage_to_the_target() -> None:
    nominal = 1 / POLICY.calls_per_second  # target: 0.75 + 0.8 * 0.25 = 0.95
    assert adapt_interval(nominal, 0.95, POLICY) == pytest.approx(nominal)
    assert adapt_interval(nominal, 0.5, POLICY) == nominal  # under slow_down_at: no signal
    longer, shorter = nominal, nominal
    for _ in range(2000):
        longer = adapt_interval(longer, 0.99, POLICY)
        shorter = adapt_interval(shorter, 0.8, POLICY)
    assert longer == pytest.approx(nominal * 50) and shorter == pytest.approx(nominal / 50)
    assert adapt_interval(nominal, 0.99, POLICY) > adapt_interval(nominal, 0.97, POLICY) > nominal


def usage_handler(*values: str, **headers: str) -> Any:
    queue = list(values)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"x-usage": queue.pop(0), **headers})

    return handler


async def test_calls_are_spaced_once_usage_passes_slow_down_at(
    hub_for: Any, sleeps: Sleeps
) -> None:
    platform = make_platform(usage=header_usage, policy=POLICY)
    async with hub_for(usage_handler("0.5", "0.875", "0.95", "0.5")) as hub:
        client = hub.client(platform)
        for _ in range(4):
            await client.get(URL)
    # after 50 %: no wait; after 87.5 %: ~0.1 s; after 95 %: ~0.2/0.05/10 = 0.4 s (the
    # learned interval has shortened a little: 87.5 % is under the 95 % target)
    assert sleeps == [pytest.approx(0.1, rel=0.05), pytest.approx(0.4, rel=0.05)]
    assert sleeps[0] < 0.1


async def test_a_regain_after_pauses_the_scope(hub_for: Any, sleeps: Sleeps) -> None:
    platform = make_platform(usage=header_usage, policy=POLICY)
    handler = usage_handler("0.2", "0.2", **{"x-regain": "30"})
    async with hub_for(handler) as hub:
        client = hub.client(platform)
        await client.get(URL)
        await client.get(URL)
    assert sleeps == [pytest.approx(30)]


async def test_a_pause_longer_than_the_ceiling_reschedules_without_calling(
    hub_for: Any, sleeps: Sleeps
) -> None:
    calls = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, headers={"x-usage": "1.0", "x-regain": "900"})

    platform = make_platform(usage=header_usage, policy=POLICY)
    async with hub_for(handler, config=HttpConfig(max_inline_wait=60)) as hub:
        client = hub.client(platform)
        await client.get(URL)
        with pytest.raises(RetryLater) as caught:
            await client.get(URL)
    assert caught.value.retry_after == pytest.approx(900)
    assert len(calls) == 1 and sleeps == []


async def test_account_usage_slows_that_account_only(hub_for: Any, sleeps: Sleeps) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        account = request.extensions[ACCOUNT]
        used = "0.99" if account == "act_hot" else "0.1"
        return httpx2.Response(200, headers={"x-account-usage": f"{account}={used}"})

    platform = make_platform(usage=header_usage, policy=POLICY)
    async with hub_for(handler, config=HttpConfig(max_pace=5)) as hub:
        client = hub.client(platform)
        for account in ("act_cold", "act_hot", "act_cold", "act_cold", "act_hot"):
            await client.get(URL, extensions={ACCOUNT: account})
    # only the second call on act_hot waits: 0.24 / 0.01 / 10 = 2.4 s (and a little more:
    # 99 % is over the target, so the learned interval has grown)
    assert len(sleeps) == 1 and 2.4 < sleeps[0] < 2.4 * 1.5


async def test_a_platform_without_usage_headers_gets_a_token_bucket(
    hub_for: Any, sleeps: Sleeps
) -> None:
    policy = RateLimitPolicy(calls_per_second=4, burst=2)
    platform = make_platform(policy=policy)
    async with hub_for(lambda r: httpx2.Response(200)) as hub:
        client = hub.client(platform)
        for _ in range(4):
            await client.get(URL)
    # two from the burst, then one every 1/4 s (the fake clock advances by each wait)
    assert sleeps == [pytest.approx(0.25), pytest.approx(0.25)]


async def test_concurrency_is_capped_per_platform(hub_for: Any) -> None:
    in_flight = peak = 0

    async def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx2.Response(200)

    policy = RateLimitPolicy(calls_per_second=1000, burst=1000, max_concurrency=2)
    async with hub_for(handler) as hub:
        client = hub.client(make_platform(policy=policy))
        await asyncio.gather(*[client.get(URL) for _ in range(8)])
    assert peak == 2


async def test_an_unreadable_usage_header_is_logged_not_fatal(hub_for: Any) -> None:
    from structlog.testing import capture_logs

    platform = make_platform(usage=header_usage, policy=POLICY)
    async with hub_for(usage_handler("12%")) as hub:
        with capture_logs() as logs:
            response = await hub.client(platform).get(URL)
    assert response.status_code == 200
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["http.usage_unreadable"]
