"""Documented Graph exchanges (Meta's published examples) replayed through the real client."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
import vcr
from cmis_meta.auth import MetaAuthProvider
from cmis_meta.client import usage
from cmis_meta.streams import streams
from meta_helpers import make_context, read

from cmis_core import AuthorizationRequest, Partition, TokenSet
from cmis_core.errors import RateLimited, ReauthRequired

ENV = {
    "CMIS_META_CLIENT_ID": "APP_ID",
    "CMIS_META_CLIENT_SECRET": "app-secret",
    "CMIS_META_REPORT_POLL_SECONDS": "0",
}


def _params(request: vcr.request.Request) -> dict[str, str]:
    return {
        k: v
        for k, v in request.query
        if k not in ("client_secret", "appsecret_proof", "access_token")
    }


def same_query_except_secrets(r1: vcr.request.Request, r2: vcr.request.Request) -> None:
    """Cassette requests name every parameter but the secrets, which are filtered out."""
    expected, sent = _params(r2), _params(r1)
    wanted = {k: v for k, v in expected.items() if k != "after"}
    assert {k: sent.get(k) for k in wanted} == wanted
    assert sent.get("after") == expected.get("after")


tape = vcr.VCR(
    cassette_library_dir=str(Path(__file__).parent / "cassettes"),
    record_mode="none",
    match_on=("method", "scheme", "host", "path", "graph_query"),
)
tape.register_matcher("graph_query", same_query_except_secrets)


@pytest.fixture
async def client():
    async with httpx2.AsyncClient() as http:
        yield http


async def test_login_code_exchange_long_lived_and_debug_token(client) -> None:
    ctx = make_context(ENV, client)
    with tape.use_cassette("login_exchange.yaml") as cassette:
        tokens = await MetaAuthProvider().complete(
            ctx,
            params={"code": "CODE", "state": "s"},
            request=AuthorizationRequest(url="https://www.facebook.com/"),
            redirect_uri="https://cmis.example/oauth/callback",
        )
        assert cassette.all_played
    assert tokens.access_token == "LONG-LIVED-USER-TOKEN"
    assert tokens.scopes == ("pages_show_list", "public_profile")
    assert tokens.expires_at == dt.datetime.fromtimestamp(1570820400, dt.UTC)
    assert (
        tokens.extra["data_access_expires_at"]
        == dt.datetime.fromtimestamp(1576687825, dt.UTC).isoformat()
    )
    assert tokens.extra["user_id"] == "10215241773831025"
    sent = [r.uri for r in cassette.requests]
    assert "app-secret" not in sent[2]  # the app token travels in a header, never the URL


async def test_error_envelopes_classified(client) -> None:
    ctx = make_context(ENV, client)
    with tape.use_cassette("errors.yaml"):
        with pytest.raises(ReauthRequired) as caught:
            await MetaAuthProvider().identify(ctx, TokenSet(access_token="t"))
        assert caught.value.code == 190
        response = await client.get(
            "https://graph.facebook.com/v27.0/act_10150000000000001/campaigns"
        )
    error = ctx.platform.classify(response)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 19 * 60
    assert {r.scope for r in usage(response)} == {"account:act_10150000000000001"}


async def test_insights_pages_money_and_conversions(client) -> None:
    ctx = make_context({**ENV, "CMIS_META_CONVERSION_ACTION_TYPES": "lead"}, client)
    stream = next(s for s in streams() if s.name == "daily_metrics_account")
    partition = Partition(
        key="act_10150000000000001:account:2026-11-01..2026-11-02",
        account_id="act_10150000000000001",
        params={"since": "2026-11-01", "until": "2026-11-02"},
    )
    with tape.use_cassette("insights.yaml") as cassette:
        records, state = await read(ctx, stream, partition)
        assert cassette.all_played
    assert [r["date"] for r in records] == [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    first = records[0]
    assert first["spend_micros"] == 5_339_500_000
    assert first["impressions"] == 2_466_376
    assert first["conversions"] == Decimal(37)
    assert records[1]["spend_micros"] == 10_000
    assert state == {"metrics_until:act_10150000000000001": "2026-11-02"}
