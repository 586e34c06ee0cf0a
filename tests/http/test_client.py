"""The governed client over httpx2.MockTransport: typed errors, retries, waits, refresh, logs."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx2
import pytest
from structlog.testing import capture_logs

from cmis_core.errors import (
    AccountFailed,
    Fatal,
    PlatformError,
    RateLimited,
    RetryLater,
    TokenRejected,
    Transient,
)
from cmis_core.http import ACCOUNT, Counters, HttpConfig, HttpHub, http_scope, replace_token

from .conftest import Sleeps, make_platform

URL = "https://api.example.test/v1/campaigns"


def meta_like_classify(response: httpx2.Response) -> PlatformError | None:
    """A plugin's map: error codes in a JSON envelope decide the type, not the status."""
    if response.status_code < 400:
        return None
    code = response.json()["error"]["code"]
    if code == 100:
        return AccountFailed("no such account", code=code)
    if code == 17:
        return RateLimited("user request limit", code=code, retry_after=4.0)
    if code == 190:
        return TokenRejected("token expired", code=code)
    if code == 2:
        return Transient("service unavailable", code=code)
    return Fatal("unknown", code=code)


def sequence(*responses: httpx2.Response) -> tuple[list[httpx2.Request], Any]:
    """A handler answering ``responses`` in order, and the requests it saw."""
    seen: list[httpx2.Request] = []
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0)

    return seen, handler


def error(code: int, status: int = 400) -> httpx2.Response:
    return httpx2.Response(status, json={"error": {"code": code, "message": "nope"}})


async def test_classify_maps_a_response_to_its_typed_error_without_retrying(
    hub_for: Any, sleeps: Sleeps
) -> None:
    seen, handler = sequence(error(100))
    platform = make_platform(classify=meta_like_classify)
    async with hub_for(handler) as hub:
        with pytest.raises(AccountFailed) as caught:
            await hub.client(platform).get(URL)
    assert caught.value.code == 100
    assert caught.value.platform == "acme" and caught.value.status == 400
    assert len(seen) == 1 and sleeps == []


async def test_default_classify_by_status(hub_for: Any) -> None:
    seen, handler = sequence(httpx2.Response(404), httpx2.Response(401))
    async with hub_for(handler) as hub:
        client = hub.client(make_platform())
        with pytest.raises(Fatal):
            await client.get(URL)
        with pytest.raises(TokenRejected):
            await client.get(URL)
    assert len(seen) == 2


async def test_a_500_is_retried_with_backoff_then_succeeds(hub_for: Any, sleeps: Sleeps) -> None:
    seen, handler = sequence(httpx2.Response(500), httpx2.Response(200, json={"data": [1]}))
    async with hub_for(handler) as hub:
        response = await hub.client(make_platform()).get(URL)
        counts = hub.counters.platform("acme")
    assert response.status_code == 200 and response.json() == {"data": [1]}
    assert len(seen) == 2
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0  # first back-off: 1 s + jitter < 1 s
    assert (counts.calls, counts.retries, counts.errors, counts.throttled) == (2, 1, 1, 0)


async def test_backoff_grows_and_attempts_are_capped(hub_for: Any, sleeps: Sleeps) -> None:
    seen, handler = sequence(*[httpx2.Response(503) for _ in range(4)])
    async with hub_for(handler, config=HttpConfig(max_attempts=4)) as hub:
        with pytest.raises(Transient):
            await hub.client(make_platform()).get(URL)
    assert len(seen) == 4 and len(sleeps) == 3
    for n, wait in enumerate(sleeps):
        assert 2**n <= wait <= 2**n + 1


async def test_retry_after_seconds_is_waited_exactly(hub_for: Any, sleeps: Sleeps) -> None:
    seen, handler = sequence(
        httpx2.Response(429, headers={"Retry-After": "7"}), httpx2.Response(200)
    )
    async with hub_for(handler) as hub:
        response = await hub.client(make_platform()).get(URL)
        counts = hub.counters.platform("acme")
    assert response.status_code == 200 and len(seen) == 2
    assert sleeps == [7.0]  # the scope's pause ends as the retry's wait does: no second wait
    assert counts.throttled == 1 and counts.calls == 2


async def test_retry_after_http_date_is_honoured(hub_for: Any, sleeps: Sleeps) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)  # the header is real time
    _seen, handler = sequence(
        httpx2.Response(503, headers={"Retry-After": when}), httpx2.Response(200)
    )
    async with hub_for(handler) as hub:
        await hub.client(make_platform()).get(URL)
    assert 28 <= sleeps[0] <= 30


async def test_classify_retry_after_wins_over_backoff(hub_for: Any, sleeps: Sleeps) -> None:
    seen, handler = sequence(error(17), httpx2.Response(200))
    async with hub_for(handler) as hub:
        await hub.client(make_platform(classify=meta_like_classify)).get(URL)
    assert sleeps[0] == 4.0 and len(seen) == 2


async def test_a_huge_wait_is_not_slept_but_raised_for_rescheduling(
    hub_for: Any, sleeps: Sleeps
) -> None:
    seen, handler = sequence(httpx2.Response(429, headers={"Retry-After": "3600"}))
    async with hub_for(handler, config=HttpConfig(max_inline_wait=60)) as hub:
        client = hub.client(make_platform())
        with pytest.raises(RetryLater) as caught:
            await client.get(URL)
        assert caught.value.retry_after == 3600.0
        assert isinstance(caught.value, RateLimited)
        # the scope stays paused: the next call is not sent, it is rescheduled too
        with pytest.raises(RetryLater) as again:
            await client.get(URL)
    assert len(seen) == 1 and sleeps == []
    assert again.value.retry_after == 3600.0  # no time passed on the fake clock


async def test_throttle_without_a_wait_still_carries_one_when_attempts_run_out(
    hub_for: Any,
) -> None:
    seen, handler = sequence(httpx2.Response(429), httpx2.Response(429))
    async with hub_for(handler, config=HttpConfig(max_attempts=2, backoff_max=20)) as hub:
        with pytest.raises(RateLimited) as caught:
            await hub.client(make_platform()).get(URL)
    assert caught.value.retry_after == 20
    assert len(seen) == 2


async def test_network_errors_become_transient_and_are_retried(
    hub_for: Any, sleeps: Sleeps
) -> None:
    calls = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx2.ConnectError("connection refused", request=request)
        return httpx2.Response(200)

    async with hub_for(handler) as hub:
        assert (await hub.client(make_platform()).get(URL)).status_code == 200
    assert len(calls) == 3 and len(sleeps) == 2

    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    async with hub_for(down, config=HttpConfig(max_attempts=2)) as hub:
        with pytest.raises(Transient) as caught:
            await hub.client(make_platform()).get(URL)
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)


async def test_rejected_token_is_refreshed_once(hub_for: Any) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        ok = request.headers["authorization"] == "Bearer new-token"
        return httpx2.Response(200) if ok else error(190, status=401)

    refreshes: list[str] = []

    async def refresh(request: httpx2.Request) -> httpx2.Request | None:
        refreshes.append(request.method)
        return replace_token(request, "old-token", "new-token")

    platform = make_platform(classify=meta_like_classify)
    async with hub_for(handler) as hub:
        client = hub.client(platform)
        with http_scope(on_token_rejected=refresh):
            response = await client.post(
                URL, json={"a": 1}, headers={"Authorization": "Bearer old-token"}
            )
    assert response.status_code == 200 and refreshes == ["POST"]


async def test_a_token_refused_after_refresh_propagates(hub_for: Any) -> None:
    seen, handler = sequence(error(190, 401), error(190, 401), httpx2.Response(200))
    refreshes = []

    async def refresh(request: httpx2.Request) -> httpx2.Request | None:
        refreshes.append(1)
        return replace_token(request, "old", "new")

    platform = make_platform(classify=meta_like_classify)
    async with hub_for(handler) as hub:
        with http_scope(on_token_rejected=refresh), pytest.raises(TokenRejected):
            await hub.client(platform).get(URL, params={"access_token": "old"})
    assert refreshes == [1] and len(seen) == 2
    assert seen[1].url.params["access_token"] == "new"


async def test_without_a_refresher_a_rejected_token_is_not_retried(hub_for: Any) -> None:
    seen, handler = sequence(error(190, 401))
    async with hub_for(handler) as hub:
        with pytest.raises(TokenRejected):
            await hub.client(make_platform(classify=meta_like_classify)).get(URL)
    assert len(seen) == 1


async def test_logs_redact_tokens_and_never_show_headers_or_bodies(hub_for: Any) -> None:
    _seen, handler = sequence(httpx2.Response(500), httpx2.Response(200, json={"secret": "body"}))
    async with hub_for(handler) as hub:
        with capture_logs() as logs:
            await hub.client(make_platform()).get(
                URL,
                params={"access_token": "EAAB-token", "fields": "id,name", "appsecret_proof": "p"},
                headers={"Authorization": "Bearer hdr-token"},
            )
    text = repr(logs)
    for secret in ("EAAB-token", "hdr-token", "appsecret_proof=p", "body"):
        assert secret not in text
    requests = [e for e in logs if e["event"] == "http.request"]
    assert [e["status"] for e in requests] == [500, 200]
    assert requests[1]["url"] == (
        "https://api.example.test/v1/campaigns?access_token=[redacted]&fields=id%2Cname"
        "&appsecret_proof=[redacted]"
    )
    assert requests[1]["method"] == "GET" and requests[1]["elapsed_ms"] >= 0
    assert [e["event"] for e in logs if e["event"] == "http.retry"] == ["http.retry"]


async def test_counters_by_platform_account_and_run(hub_for: Any) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/throttle"):
            return httpx2.Response(429, headers={"Retry-After": "0"})
        return httpx2.Response(200, content=b"x" * 10)

    run = Counters()
    async with hub_for(handler, config=HttpConfig(max_attempts=2)) as hub:
        client = hub.client(make_platform())
        with http_scope(account="act_1", counters=run):
            await client.get(URL)
            await client.get(URL, extensions={ACCOUNT: "act_2"})
            with pytest.raises(RateLimited):
                await client.get(f"{URL}/throttle")
        await client.get(URL)
        totals = hub.counters.platform("acme")
        act_1 = hub.counters.account("acme", "act_1")
        act_2 = hub.counters.account("acme", "act_2")
    assert (totals.calls, totals.throttled, totals.retries) == (5, 2, 1)
    assert (act_1.calls, act_1.throttled, act_2.calls) == (3, 2, 1)
    assert act_1.bytes_received == 10
    assert run.platform("acme").calls == 4  # the last call ran outside the run's scope
    assert hub.counters.to_json()["acme"]["throttled"] == 2


async def test_one_client_per_platform_and_app_and_loop_bound() -> None:
    hub = HttpHub(transport=httpx2.MockTransport(lambda r: httpx2.Response(200)))
    async with hub:
        platform = make_platform()
        assert hub.client(platform) is hub.client(platform)
        assert hub.client(platform, app="123") is not hub.client(platform)
        assert isinstance(hub.client(platform), httpx2.AsyncClient)


def test_a_hub_is_never_built_outside_an_event_loop() -> None:
    with pytest.raises(RuntimeError):
        HttpHub()
