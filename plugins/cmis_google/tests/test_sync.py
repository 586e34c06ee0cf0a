"""Sync against the sandbox: hierarchies, login-customer-id, paging, per-account failures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from cmis_google.sandbox.data import SIZES, Accounts
from cmis_google.streams import streams
from google_helpers import api_client, connect, context, control, serve_google

from cmis_core.errors import AccountFailed, PlatformError, RateLimited, TokenRejected
from cmis_core.settings import PlatformSettings
from cmis_core.types import TokenSet

Records = dict[str, list[Mapping[str, Any]]]


async def read(
    settings: PlatformSettings, tokens: TokenSet, name: str, account: Any = None
) -> list[Mapping[str, Any]]:
    stream = {s.name: s for s in streams()}[name]
    out: list[Mapping[str, Any]] = []
    async with api_client(tokens) as http:
        ctx = context(settings, http)
        for partition in stream.partitions(ctx, account=account, state={}):
            async for page in stream.read(ctx, partition):
                out.extend(page.records)
    return out


async def sync_all(
    settings: PlatformSettings, tokens: TokenSet
) -> tuple[Records, dict[str, PlatformError]]:
    """What the engine will do: accounts first, then every child stream per account.

    An ``AccountFailed`` ends that account only; the others go on.
    """
    accounts = await read(settings, tokens, "ad_accounts")
    records: Records = defaultdict(list)
    records["ad_accounts"] = accounts
    failed: dict[str, PlatformError] = {}
    for account in accounts:
        for stream in streams():
            if stream.parent is None:
                continue
            try:
                records[stream.name] += await read(settings, tokens, stream.name, account)
            except AccountFailed as exc:
                failed[account["external_id"]] = exc
                break
    return records, failed


async def test_manager_with_three_clients_syncs_all_three() -> None:
    with serve_google("small") as served:
        settings = served.settings()
        tokens = await connect(settings)
        records, failed = await sync_all(settings, tokens)
        expected = await control(served, "GET", "/expected")
    assert not failed
    accounts = records["ad_accounts"]
    assert len(accounts) == 3
    assert {a["raw"]["login_customer_id"] for a in accounts} == {"9000000001"}
    assert all(a["currency"] and a["timezone"] for a in accounts)
    for name, count in expected["streams"].items():
        assert len(records[name]) == count, name


async def test_one_client_denied_leaves_the_other_two_complete() -> None:
    data = Accounts(7, SIZES["small"])
    denied = str(data.clients[1].id)
    with serve_google("small", deny={denied: "USER_PERMISSION_DENIED"}) as served:
        settings = served.settings()
        tokens = await connect(settings)
        records, failed = await sync_all(settings, tokens)
    assert set(failed) == {denied}
    assert isinstance(failed[denied], AccountFailed)
    assert failed[denied].code == "USER_PERMISSION_DENIED"
    others = {str(c.id) for c in data.clients} - {denied}
    for name in ("campaigns", "ad_groups", "ads", "campaign_metrics", "ad_metrics"):
        assert {r["account_id"] for r in records[name]} == others, name
    per_client = len(data.campaigns(data.clients[0].id))
    assert len(records["campaigns"]) == 2 * per_client


async def test_nested_managers_and_a_direct_client_are_all_reached() -> None:
    with serve_google("medium") as served:
        settings = served.settings()
        tokens = await connect(settings)
        accounts = await read(settings, tokens, "ad_accounts")
        campaigns = []
        for account in accounts:  # proves each remembered login-customer-id is accepted
            campaigns += await read(settings, tokens, "campaigns", account)
    data = Accounts(7, SIZES["medium"])
    assert sorted(a["external_id"] for a in accounts) == sorted(str(c.id) for c in data.clients)
    logins = {a["external_id"]: a["raw"]["login_customer_id"] for a in accounts}
    standalone = next(c for c in data.clients if c.parent is None)
    assert logins[str(standalone.id)] == str(standalone.id)
    under_sub = [c for c in data.clients if c.parent == 9_000_000_002]
    assert all(logins[str(c.id)] == "9000000001" for c in under_sub)
    assert len(campaigns) == sum(len(data.campaigns(c.id)) for c in data.clients)


async def test_login_customer_id_setting_limits_the_roots() -> None:
    with serve_google("medium") as served:
        settings = served.settings(LOGIN_CUSTOMER_ID="900-000-0001")
        tokens = await connect(settings)
        accounts = await read(settings, tokens, "ad_accounts")
    assert len(accounts) == 7  # the standalone client is not below that manager


async def test_small_pages_are_followed_and_metrics_add_up() -> None:
    with serve_google("small", page_size=5) as served:
        settings = served.settings(LOOKBACK_DAYS="3")
        tokens = await connect(settings)
        account = (await read(settings, tokens, "ad_accounts"))[0]
        await control(served, "POST", "/stats/reset")
        ads = await read(settings, tokens, "ad_metrics", account)
        stats = await control(served, "GET", "/stats")
        campaigns = await read(settings, tokens, "campaign_metrics", account)
    data = Accounts(7, SIZES["small"])
    assert len(ads) == len(data.ads(int(account["external_id"]))) * 3
    path = f"POST /v26/customers/{account['external_id']}/googleAds:search"
    assert stats["calls"] == {path: -(-len(ads) // 5)}  # one request per 5-row page
    assert stats["statuses"] == {"200": stats["calls"][path]}
    assert {r["date"] for r in ads} == {r["date"] for r in campaigns}
    assert len({r["date"] for r in ads}) == 3
    spend: dict[Any, int] = defaultdict(int)
    conversions: dict[Any, Decimal] = defaultdict(Decimal)
    for row in ads:
        spend[row["date"]] += row["spend_micros"]
        conversions[row["date"]] += row["conversions"]
    for row in campaigns:
        assert isinstance(row["spend_micros"], int)
        assert row["currency"] == account["currency"]
    assert sum(spend.values()) == sum(r["spend_micros"] for r in campaigns)
    assert sum(conversions.values()) == sum(r["conversions"] for r in campaigns)


async def test_quota_error_is_rate_limited_with_the_retry_delay() -> None:
    with serve_google("small") as served:
        settings = served.settings()
        tokens = await connect(settings)
        account = (await read(settings, tokens, "ad_accounts"))[0]
        await control(
            served,
            "POST",
            "/faults",
            {"path": "/v26/customers/*", "kind": "throttle", "retry_after": 17},
        )
        with pytest.raises(RateLimited) as caught:
            await read(settings, tokens, "campaigns", account)
    assert caught.value.retry_after == 17


async def test_expired_access_token_is_token_rejected() -> None:
    with serve_google("small") as served:
        settings = served.settings()
        tokens = await connect(settings)
        account = (await read(settings, tokens, "ad_accounts"))[0]
        await control(served, "POST", "/tokens/expire", {"access_token": tokens.access_token})
        with pytest.raises(TokenRejected) as caught:
            await read(settings, tokens, "campaigns", account)
    assert caught.value.code == "OAUTH_TOKEN_EXPIRED"
    assert tokens.access_token not in str(caught.value)


async def test_disabled_accounts_get_no_partitions() -> None:
    stream = {s.name: s for s in streams()}["campaign_metrics"]
    settings = PlatformSettings(platform="google", environ={})
    ctx = context(settings, httpx2.AsyncClient())
    cancelled = {"external_id": "1234567890", "platform_status": "CANCELED", "raw": {}}
    assert list(stream.partitions(ctx, account=cancelled, state={})) == []
    enabled = {
        "external_id": "123-456-7890",
        "platform_status": "ENABLED",
        "timezone": "Asia/Tokyo",
        "currency": "JPY",
        "raw": {"login_customer_id": "9000000001"},
    }
    (partition,) = stream.partitions(ctx, account=enabled, state={})
    assert partition.account_id == "1234567890"
    assert partition.params["login_customer_id"] == "9000000001"
    assert partition.key.startswith("1234567890:")
    query = stream.query(partition).render()  # type: ignore[attr-defined]
    assert f"BETWEEN '{partition.params['since']}' AND '{partition.params['until']}'" in query


async def test_lead_forms_stream_routes_each_lead_form_and_stores_nothing() -> None:
    from cmis_google.lead_forms import LeadFormsStream

    data = Accounts(7, SIZES["small"])
    stream = LeadFormsStream()
    with serve_google("small") as served:
        settings = served.settings()
        tokens = await connect(settings)
        accounts = await read(settings, tokens, "ad_accounts")
        routes: dict[str, list[tuple[str, str]]] = {}
        async with api_client(tokens) as http:
            ctx = context(settings, http)
            for account in accounts:
                for partition in stream.partitions(ctx, account=account, state={}):
                    async for page in stream.read(ctx, partition):
                        assert page.records == []
                        routes.setdefault(account["external_id"], []).extend(page.routes)
    # one lead form per client; the text asset of each is left out by the WHERE
    assert routes == {str(c.id): [("form", str(data.lead_form_id(c.id)))] for c in data.clients}
    # the form the sandbox's lead deliveries name is among them
    assert ("form", "40000000001") in routes[str(data.clients[0].id)]
