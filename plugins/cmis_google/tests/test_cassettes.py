"""The plugin against recorded copies of exchanges Google documents (vcrpy, replay only).

Requests are matched on method, URL, the JSON body (so a ``pageSize`` or a changed query
would not match) and the ``login-customer-id`` header; Authorization is never recorded.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest
import vcr
from cmis_google.auth import GoogleAuth
from cmis_google.streams import streams
from google_helpers import context

from cmis_core.errors import ReauthRequired
from cmis_core.settings import PlatformSettings
from cmis_core.types import TokenSet

CASSETTES = Path(__file__).parent / "cassettes"


def _json_body(r1: Any, r2: Any) -> None:
    def load(body: Any) -> Any:
        if body in (None, b"", ""):
            return None
        text = body.decode() if isinstance(body, bytes) else body
        try:
            return json.loads(text)
        except ValueError:
            return {k: v for k, v in parse_qs(text).items() if k == "grant_type"}

    assert load(r1.body) == load(r2.body)


def _login(r1: Any, r2: Any) -> None:
    assert r1.headers.get("login-customer-id") == r2.headers.get("login-customer-id")


replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "uri", "json_body", "login"],
    filter_headers=["authorization"],
)
replay.register_matcher("json_body", _json_body)
replay.register_matcher("login", _login)
SETTINGS = PlatformSettings(
    platform="google", environ={"CMIS_GOOGLE_CLIENT_ID": "id", "CMIS_GOOGLE_CLIENT_SECRET": "s"}
)


async def _read(name: str, account: Any = None) -> list[Any]:
    stream = {s.name: s for s in streams()}[name]
    out: list[Any] = []
    async with httpx2.AsyncClient() as http:
        ctx = context(SETTINGS, http)
        for partition in stream.partitions(ctx, account=account, state={}):
            async for page in stream.read(ctx, partition):
                out.extend(page.records)
    return out


async def test_hierarchy_yields_clients_and_skips_a_disabled_manager() -> None:
    with replay.use_cassette("accounts_hierarchy.yaml") as cassette:
        accounts = await _read("ad_accounts")
    assert cassette.all_played
    assert [(a["external_id"], a["currency"], a["timezone"], a["status"]) for a in accounts] == [
        ("2222222222", "EUR", "Europe/Paris", "active"),
        ("4444444444", "JPY", "Asia/Tokyo", "archived"),
    ]
    assert {a["raw"]["login_customer_id"] for a in accounts} == {"1111111111"}


async def test_campaign_pages_follow_the_token_with_the_same_query() -> None:
    account = {
        "external_id": "2222222222",
        "platform_status": "ENABLED",
        "raw": {"login_customer_id": "1111111111"},
    }
    with replay.use_cassette("campaigns_two_pages.yaml") as cassette:
        campaigns = await _read("campaigns", account)
    assert cassette.all_played
    assert [(c["external_id"], c["status"], c["daily_budget_micros"]) for c in campaigns] == [
        ("101", "active", 50_000_000),
        ("102", "deleted", None),
    ]


async def test_refresh_then_a_refused_grant() -> None:
    tokens = TokenSet(
        access_token="ya29.old",
        refresh_token="1//refresh-example",
        expires_at=dt.datetime.now(dt.UTC),
    )
    with replay.use_cassette("oauth_refresh.yaml") as cassette:
        async with httpx2.AsyncClient() as http:
            ctx = context(SETTINGS, http)
            fresh = await GoogleAuth().refresh(ctx, tokens)
            with pytest.raises(ReauthRequired) as caught:
                await GoogleAuth().refresh(ctx, fresh)
    assert cassette.all_played
    assert fresh.access_token == "ya29.refreshed-example"
    assert fresh.refresh_token == "1//refresh-example"
    assert fresh.expires_at is not None
    assert "7 days" in (caught.value.hint or "")
