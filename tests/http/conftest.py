"""Helpers for the HTTP client tests: platforms, a hub over a mock transport, a fake sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from cmis_core.http import HttpConfig, HttpHub, MemoryStore
from cmis_core.types import Platform, RateLimitPolicy, UsageReading


def make_platform(
    *,
    name: str = "acme",
    classify: Callable[[httpx2.Response], Any] | None = None,
    usage: Callable[[httpx2.Response], list[UsageReading]] | None = None,
    policy: RateLimitPolicy | None = None,
) -> Platform:
    return Platform(
        name=name,
        display_name=name.title(),
        api_version="v1",
        base_url="https://api.example.test",
        classify=classify,
        usage=usage,
        rate_limit=policy or RateLimitPolicy(calls_per_second=1000, burst=1000),
    )


def header_usage(response: httpx2.Response) -> list[UsageReading]:
    """Usage from ``X-Usage`` (app) and ``X-Account-Usage: <account>=<fraction>``."""
    readings = []
    if "x-usage" in response.headers:
        regain = response.headers.get("x-regain")
        readings.append(
            UsageReading(
                scope="app",
                used=float(response.headers["x-usage"]),
                regain_after=float(regain) if regain else None,
            )
        )
    if "x-account-usage" in response.headers:
        account, _, used = response.headers["x-account-usage"].partition("=")
        readings.append(UsageReading(scope=f"account:{account}", used=float(used)))
    return readings


class Sleeps(list[float]):
    """A fake clock: records the waits the client asks for and advances instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_800_000_000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def hub_for(sleeps: Sleeps) -> Callable[..., Any]:
    """``async with hub_for(handler, config=...) as hub``: a hub over a MockTransport."""
    import contextlib

    @contextlib.asynccontextmanager
    async def build(
        handler: Callable[[httpx2.Request], Any], *, config: HttpConfig | None = None
    ) -> AsyncIterator[HttpHub]:
        hub = HttpHub(
            config or HttpConfig(),
            transport=httpx2.MockTransport(handler),
            store=MemoryStore(clock=sleeps.clock),
            sleep=sleeps,
            clock=sleeps.clock,
        )
        async with hub:
            yield hub

    return build
