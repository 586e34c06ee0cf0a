"""The engine under faults: throttles never end a run, a paging loop stops its stream only,
a rejected token is refreshed once, a refused refresh stops the run as re-auth needed."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
import structlog

from cmis_core.errors import ExitCode, ReauthRequired
from cmis_core.store import Store
from cmis_core.testing.databases import TestDatabase
from cmis_core.types import PlatformContext, TokenSet

from .helpers import FakeTime, add_integration, connect, counts, registry_for, run_sync, served


@pytest.fixture
def example() -> Any:
    registry = registry_for("example")
    with served(registry, "example") as sandbox:
        yield registry, sandbox


async def setup(example: Any, store: Store, database: TestDatabase, **env: str) -> Any:
    registry, sandbox = example
    org = store.create_org("acme")
    add_integration(store, org.id, "example")
    settings = database.settings(**sandbox.env, CMIS_HTTP_MAX_ATTEMPTS="3", **env)
    tokens = await connect(registry, "example", sandbox.env)
    return registry, sandbox, org.id, settings, tokens


async def test_throttles_outlasting_http_retries_are_waited_out(
    example: Any, store: Store, database: TestDatabase
) -> None:
    registry, sandbox, org_id, settings, tokens = await setup(example, store, database)
    # 3 attempts per call: 7 throttles in a row make the client give up twice on one page
    await sandbox.control(
        "POST",
        "/faults",
        {"path": "/v1/ad_accounts/*/ads", "kind": "throttle", "times": 7, "retry_after": 0.01},
    )
    await sandbox.control(
        "POST",
        "/faults",
        {"path": "/v1/ad_accounts/*/insights", "kind": "throttle", "times": 2, "retry_after": 0.01},
    )
    clock = FakeTime()
    result = await run_sync(
        store, registry, settings, org_id=org_id, platform="example", tokens=tokens, clock=clock
    )
    assert result.status == "succeeded", result.to_json()
    assert result.streams["ads"].throttled == 7
    assert result.streams["daily_metrics"].throttled == 2
    assert result.throttled == 9
    assert clock.sleeps.count(1.0) >= 9, "each throttle's Retry-After (1 s) was waited"
    expected = await sandbox.expected()
    stored = counts(store, org_id)
    assert stored["ads"] == expected["ads"]
    assert stored["daily_metrics"] == expected["daily_metrics"]


async def test_a_cursor_seen_twice_stops_that_stream_with_an_error(
    example: Any, store: Store, database: TestDatabase
) -> None:
    registry, sandbox, org_id, settings, tokens = await setup(example, store, database)
    looping = {"data": [], "paging": {"cursors": {"after": "SAME"}, "next": "http://x/next"}}
    await sandbox.control(
        "POST",
        "/faults",
        {"path": "/v1/ad_accounts/*/campaigns", "status": 200, "body": looping, "times": 2},
    )
    result = await run_sync(
        store, registry, settings, org_id=org_id, platform="example", tokens=tokens
    )
    assert result.status == "partial"
    assert result.exit_code == ExitCode.PARTIAL
    assert result.streams["campaigns"].errors == 1
    assert "already returned" in result.streams["campaigns"].messages[0]
    expected = await sandbox.expected()
    stored = counts(store, org_id)
    assert stored["ads"] == expected["ads"]  # the other streams completed
    assert 0 < stored["campaigns"] < expected["campaigns"]  # the other account's campaigns


async def test_rejected_token_is_refreshed_once(
    example: Any, store: Store, database: TestDatabase
) -> None:
    registry, sandbox, org_id, settings, tokens = await setup(example, store, database)
    await sandbox.control("POST", "/tokens/expire", {"access_token": tokens.access_token})
    provider = registry.auth_provider("example")
    renewed: list[TokenSet] = []

    async def renew(old: TokenSet) -> TokenSet:
        async with httpx2.AsyncClient(timeout=10) as http:
            ctx = PlatformContext(
                platform=registry.platform("example"),
                settings=settings.platform("example"),
                http=http,
                log=structlog.get_logger("test"),
            )
            fresh = await provider.refresh(ctx, old)
        renewed.append(fresh)
        return fresh

    result = await run_sync(
        store,
        registry,
        settings,
        org_id=org_id,
        platform="example",
        tokens=tokens,
        on_token_rejected=renew,
        streams=["campaigns"],
    )
    assert result.status == "succeeded", result.to_json()
    assert len(renewed) == 1
    assert counts(store, org_id)["campaigns"] == (await sandbox.expected())["campaigns"]


async def test_refused_refresh_stops_the_run_as_reauth_required(
    example: Any, store: Store, database: TestDatabase
) -> None:
    registry, sandbox, org_id, settings, tokens = await setup(example, store, database)
    await sandbox.control("POST", "/tokens/expire", {"access_token": tokens.access_token})

    async def renew(old: TokenSet) -> TokenSet:
        raise ReauthRequired("the grant is gone", platform="example")

    result = await run_sync(
        store,
        registry,
        settings,
        org_id=org_id,
        platform="example",
        tokens=tokens,
        on_token_rejected=renew,
    )
    assert result.status == "failed"
    assert result.reauth_required
    assert result.exit_code == ExitCode.NOPERM
    assert tokens.access_token not in str(result.to_json())
