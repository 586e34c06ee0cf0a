"""Paging, rate limits, faults, the call log, data generation and the control API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from cmis_core.contract import SandboxOptions
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.sandbox import (
    ApiStyle,
    FakePlatform,
    HmacWebhooks,
    InvalidCursor,
    LazyTable,
    OAuthConfig,
    Usage,
    cursor_page,
    cursor_paging,
    decode_cursor,
    encode_cursor,
    offset_page,
    page_token_page,
    read_int,
    rng_for,
)
from cmis_core.testing.serve import serve
from cmis_core.webhooks.hmac import HmacScheme

ITEMS = LazyTable(23, lambda i: {"id": f"c_{i}"})


class GraphStyle(ApiStyle):
    """A Meta-like style: token errors are 400 code 190, usage in X-App-Usage."""

    def token_error(self, problem):  # type: ignore[no-untyped-def]
        return self.error(400, "190", f"Error validating access token: {problem}")

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        return {"X-App-Usage": f'{{"call_count":{usage.percent}}}'}


def build(**options: object) -> FakePlatform:
    opts = SandboxOptions(**options)  # type: ignore[arg-type]
    scheme = HmacScheme(prefix="sha256=")
    fake = FakePlatform(
        "demo",
        options=opts,
        oauth=OAuthConfig(client_id="cid", client_secret="cs"),
        style=GraphStyle(),
        expected=lambda: {"things": len(ITEMS)},
        webhooks=HmacWebhooks(
            path="/webhooks/demo",
            scheme=scheme,
            secret="whsec",
            signature_header="X-Sig",
            sample=lambda n: {"n": n},
        ),
        rate=1.0,
        burst=5,
    )

    @fake.get("/v1/things")
    async def things(call):  # type: ignore[no-untyped-def]
        page = cursor_page(
            ITEMS,
            after=call.query.get("after"),
            limit=read_int(call.request, "limit", default=10, maximum=10),
            scope="things",
        )
        return call.json(
            {"data": page.items, "paging": cursor_paging(page, call.request, scope="things")}
        )

    return fake


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


@pytest.fixture
def served() -> Iterator[tuple[FakePlatform, str]]:
    fake = build()
    with serve(fake.app()) as url:
        yield fake, url


def token_for(fake: FakePlatform) -> str:
    grant = fake.tokens.new_grant(client_id="cid", user_id="u", scopes=())
    return fake.tokens.issue_access(grant, 3600)


def test_cursors_are_opaque_and_bound_to_their_collection() -> None:
    cursor = encode_cursor(20, "campaigns:act_1")
    assert "20" not in cursor
    assert decode_cursor(cursor, "campaigns:act_1") == 20
    for bad in ("garbage!", encode_cursor(20, "ads:act_1"), "eyJvIjotMX0"):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, "campaigns:act_1")


def test_page_token_and_offset_paging_cover_everything_once() -> None:
    seen, token = [], None
    while True:
        page, token = page_token_page(ITEMS, page_token=token, page_size=7)
        seen += page.items
        if token is None:
            break
    assert seen == list(ITEMS)
    assert offset_page(ITEMS, offset=20, count=10).items == list(ITEMS)[20:]
    assert not offset_page(ITEMS, offset=20, count=10).has_more


def test_lazy_tables_are_deterministic_and_lazy() -> None:
    made: list[int] = []

    def make(i: int) -> int:
        made.append(i)
        return rng_for(7, "ad", i).randint(0, 10**9)

    big = LazyTable(1_000_000, make)
    assert len(big) == 1_000_000
    assert made == []
    assert (
        big[999_999]
        == LazyTable(10**6, make)[999_999]
        == rng_for(7, "ad", 999_999).randint(0, 10**9)
    )
    assert big[-1] == big[999_999]
    assert len(made) <= 3
    assert rng_for(7, "ad", 1).random() != rng_for(8, "ad", 1).random()


async def test_cursor_paging_walks_all_pages_and_rejects_a_forged_cursor(http, served) -> None:
    fake, url = served
    headers = {"Authorization": f"Bearer {token_for(fake)}"}
    ids, next_url = [], f"{url}/v1/things"
    while next_url:
        body = (await http.get(next_url, headers=headers)).json()
        ids += [r["id"] for r in body["data"]]
        next_url = body["paging"].get("next")
    assert ids == [f"c_{i}" for i in range(23)]
    bad = await http.get(f"{url}/v1/things", params={"after": "forged"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_token_errors_use_the_platform_style(http, served) -> None:
    fake, url = served
    missing = await http.get(f"{url}/v1/things")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "190"
    token = token_for(fake)
    control = SandboxControl(url, http, platform="demo")
    assert await control.expire_tokens(token) == 1
    expired = await http.get(f"{url}/v1/things", headers={"Authorization": f"Bearer {token}"})
    assert "expired" in expired.json()["error"]["message"]
    other = token_for(fake)
    assert await control.revoke(other) == 1
    revoked = await http.get(f"{url}/v1/things", params={"access_token": other})
    assert "revoked" in revoked.json()["error"]["message"]


async def test_usage_rises_with_load_then_throttles(http, served) -> None:
    fake, url = served
    headers = {"Authorization": f"Bearer {token_for(fake)}"}
    usages = []
    for _ in range(5):
        response = await http.get(f"{url}/v1/things", headers=headers)
        assert response.status_code == 200
        usages.append(json.loads(response.headers["x-app-usage"])["call_count"])
    # each call takes a fifth of the bucket; it refills at 1 call/s, so usage rises ~20 a call
    assert usages == sorted(usages)
    assert usages[0] <= 20
    assert usages[-1] >= 90
    throttled = await http.get(f"{url}/v1/things", headers=headers)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    stats = await SandboxControl(url, http, platform="demo").stats()
    assert stats["throttled"] == 1
    assert stats["calls"]["GET /v1/things"] == 6
    assert stats["statuses"] == {"200": 5, "429": 1}
    # the budget: the refused call charged nothing; allowed is burst + rate x active time
    (budget,) = stats["rate_limits"].values()
    assert budget["charged"] == 5
    assert 5 <= budget["allowed"] < 5 + 5 * 1.0


async def test_faults_fire_n_times_on_matching_paths(http, served) -> None:
    fake, url = served
    control = SandboxControl(url, http, platform="demo")
    headers = {"Authorization": f"Bearer {token_for(fake)}"}
    await control.fault(path="/v1/*", kind="server_error", times=2)
    await control.fault(path="/v1/things", kind="status", status=418, body={"teapot": True})
    statuses = [(await http.get(f"{url}/v1/things", headers=headers)).status_code for _ in range(4)]
    assert statuses == [500, 500, 418, 200]
    await control.fault(path="/v1/things", kind="throttle", retry_after=30)
    throttled = await http.get(f"{url}/v1/things", headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "30"
    bad = await http.post(f"{url}/_sandbox/faults", json={"kind": "explode"})
    assert bad.status_code == 400
    assert (await control.stats())["faults"] == 4


async def test_expected_and_webhook_samples(http, served) -> None:
    _, url = served
    control = SandboxControl(url, http, platform="demo")
    assert await control.expected() == {"things": 23}
    request, timestamped = await control.webhook_sample()
    assert not timestamped
    assert request.path == "/webhooks/demo"
    HmacScheme(prefix="sha256=").verify("whsec", request.body, request.header("x-sig"))
    wrong, _ = await control.webhook_sample(signature="wrong")
    assert wrong.header("x-sig") != HmacScheme(prefix="sha256=").sign("whsec", wrong.body)
    unsigned, _ = await control.webhook_sample(signature="none")
    assert unsigned.header("x-sig") is None
    assert await control.webhook_handshake() is None


async def test_latency_option_slows_api_calls_not_control(http) -> None:
    import time

    fake = build(latency_ms=150)
    with serve(fake.app()) as url:
        start = time.monotonic()
        await http.get(f"{url}/v1/things")
        slow = time.monotonic() - start
        start = time.monotonic()
        await http.get(f"{url}/_sandbox/stats")
        fast = time.monotonic() - start
    assert slow >= 0.15 > fast


async def test_the_call_log_counts_calls_answered_at_once(http) -> None:
    import asyncio

    fake = build(latency_ms=150)
    with serve(fake.app()) as url:
        await http.get(f"{url}/v1/things")
        assert (await http.get(f"{url}/_sandbox/stats")).json()["max_in_flight"] == 1
        await asyncio.gather(*(http.get(f"{url}/v1/things") for _ in range(3)))
        stats = (await http.get(f"{url}/_sandbox/stats")).json()
    assert stats["max_in_flight"] == 3
    assert fake.calls.in_flight == 0
