"""A fake of the Example Ads API, built with the core's sandbox toolkit.

It holds deterministic data for ``options.seed`` and ``options.size`` (small: 2 accounts,
60 campaigns, 60 ad groups, 120 ads, 28 days of ad metrics), built lazily. Routes:

- ``GET  /oauth/authorize``, ``POST /oauth/token``, ``POST /oauth/revoke`` (the toolkit's
  OAuth server: PKCE S256, rotating refresh tokens, client auth by HTTP Basic or body)
- ``GET  /v1/me``
- ``GET  /v1/ad_accounts``, ``GET /v1/ad_accounts/{id}/campaigns|ad_groups|ads``
  (cursor paging: ``limit`` up to 25, ``after``; ``fields`` selection)
- ``GET  /v1/ad_accounts/{id}/insights?since=&until=&level=ad`` (``limit`` up to 500)
- the ``/_sandbox/`` control API, and signed webhook samples for ``/webhooks/example``
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from cmis_core.contract import ASGIApp, SandboxOptions
from cmis_core.testing.sandbox import (
    Call,
    Delivery,
    FakePlatform,
    Handshake,
    HmacWebhooks,
    LazyTable,
    OAuthConfig,
    SandboxError,
    cursor_page,
    cursor_paging,
    last_days,
    money,
    pick,
    preset,
    read_int,
    rng_for,
    sandbox_env,
    select_fields,
)
from cmis_core.webhooks.hmac import HmacScheme
from cmis_example.webhooks import SCHEME, SIGNATURE_HEADER, TIMESTAMP_HEADER

CLIENT_ID = "example-sandbox-client"
CLIENT_SECRET = "example-sandbox-secret"
WEBHOOK_SECRET = "example-sandbox-webhook-secret"
VERIFY_TOKEN = "example-sandbox-verify-token"
STATUSES = {"ACTIVE": 0.7, "PAUSED": 0.2, "ARCHIVED": 0.07, "DELETED": 0.03}


@attrs.frozen
class Size:
    accounts: int
    campaigns: int  # per account
    ad_groups: int  # per campaign
    ads: int  # per ad group


SIZES = {
    "small": Size(2, 30, 1, 2),
    "medium": Size(5, 60, 3, 3),
    "large": Size(5, 200, 5, 5),  # 5,000 ads per account
    "full": Size(5, 1000, 4, 5),  # 5,000 campaigns, 100,000 ads: the sync engine's top size
}


class ExampleData:
    """Every record of the sandbox, derived from the seed (nothing stored)."""

    def __init__(self, seed: int, size: Size, days: int) -> None:
        self.seed = seed
        self.size = size
        self.day_count = days
        self.now = dt.datetime.now(dt.UTC)
        self.accounts = LazyTable(size.accounts, self._account)
        self.by_id = {self.accounts[i]["id"]: i for i in range(size.accounts)}

    def days(self, a: int) -> list[dt.date]:
        """Account ``a``'s days of metrics: the whole days before today in its time zone."""
        zone = ZoneInfo(self.accounts[a]["timezone"])
        return last_days(self.day_count, today=self.now.astimezone(zone).date())

    def _account(self, a: int) -> dict[str, Any]:
        rng = rng_for(self.seed, "account", a)
        return {
            "id": f"act_{1000 + a}",
            "name": f"Account {a + 1}",
            "currency": rng.choice(["EUR", "USD", "GBP"]),
            "timezone": rng.choice(["Europe/Paris", "America/New_York", "UTC"]),
            "status": "ACTIVE",
        }

    @functools.cache  # noqa: B019 (one per account; the data lives as long as the app)
    def campaigns(self, a: int) -> LazyTable[dict[str, Any]]:
        def make(c: int) -> dict[str, Any]:
            rng = rng_for(self.seed, "campaign", a, c)
            return {
                "id": f"cmp_{a}_{c}",
                "account_id": self.accounts[a]["id"],
                "name": f"Campaign {c + 1}",
                "status": pick(rng, STATUSES),
                "objective": rng.choice(["TRAFFIC", "CONVERSIONS", "LEADS"]),
                "daily_budget": money(rng, 10, 500),
            }

        return LazyTable(self.size.campaigns, make)

    @functools.cache  # noqa: B019
    def ad_groups(self, a: int) -> LazyTable[dict[str, Any]]:
        per = self.size.ad_groups

        def make(i: int) -> dict[str, Any]:
            c, g = divmod(i, per)
            rng = rng_for(self.seed, "ad_group", a, c, g)
            return {
                "id": f"adg_{a}_{c}_{g}",
                "account_id": self.accounts[a]["id"],
                "campaign_id": f"cmp_{a}_{c}",
                "name": f"Ad group {c + 1}.{g + 1}",
                "status": pick(rng, STATUSES),
                "bid_amount": money(rng, 0.1, 5),
            }

        return LazyTable(self.size.campaigns * per, make)

    @functools.cache  # noqa: B019
    def ads(self, a: int) -> LazyTable[dict[str, Any]]:
        per_group, per_campaign = self.size.ads, self.size.ads * self.size.ad_groups

        def make(i: int) -> dict[str, Any]:
            c, rest = divmod(i, per_campaign)
            g, n = divmod(rest, per_group)
            rng = rng_for(self.seed, "ad", a, c, g, n)
            return {
                "id": f"ad_{a}_{c}_{g}_{n}",
                "account_id": self.accounts[a]["id"],
                "campaign_id": f"cmp_{a}_{c}",
                "ad_group_id": f"adg_{a}_{c}_{g}",
                "name": f"Ad {c + 1}.{g + 1}.{n + 1}",
                "status": pick(rng, STATUSES),
            }

        return LazyTable(self.size.campaigns * per_campaign, make)

    def insights(self, a: int, since: dt.date, until: dt.date) -> LazyTable[dict[str, Any]]:
        """One row per ad and day in ``since..until`` (ad-major order)."""
        days = [d for d in self.days(a) if since <= d <= until]
        ads = self.ads(a)
        currency = self.accounts[a]["currency"]

        def make(i: int) -> dict[str, Any]:
            ad_index, d = divmod(i, len(days))
            ad, day = ads[ad_index], days[d]
            rng = rng_for(self.seed, "metric", ad["id"], day.isoformat())
            impressions = rng.randint(0, 20_000)
            clicks = rng.randint(0, impressions // 20)
            conversions = rng.randint(0, max(clicks // 10, 0) * 10) / 10
            return {
                "account_id": ad["account_id"],
                "campaign_id": ad["campaign_id"],
                "ad_group_id": ad["ad_group_id"],
                "ad_id": ad["id"],
                "date": day.isoformat(),
                "currency": currency,
                "impressions": impressions,
                "clicks": clicks,
                "spend": money(rng, 0, 300),
                "conversions": f"{conversions:.1f}",
                "conversion_value": money(rng, 0, 900),
            }

        return LazyTable(len(ads) * len(days), make)

    def expected(self) -> dict[str, int]:
        """What a complete read with empty state returns, per stream."""
        n = self.size.accounts
        ads = sum(len(self.ads(a)) for a in range(n))
        return {
            "ad_accounts": n,
            "campaigns": sum(len(self.campaigns(a)) for a in range(n)),
            "ad_groups": sum(len(self.ad_groups(a)) for a in range(n)),
            "ads": ads,
            "daily_metrics": ads * self.day_count,
        }


def _sample(data: ExampleData, n: int) -> Mapping[str, Any]:
    campaign = data.campaigns(0)[n % data.size.campaigns]
    return {
        "id": f"evt_{n}_{secrets.token_hex(4)}",
        "type": "campaign.updated",
        "account_id": campaign["account_id"],
        "object_id": campaign["id"],
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def _handshake() -> Handshake:
    challenge = secrets.token_urlsafe(12)
    query = {"mode": "subscribe", "challenge": challenge, "verify_token": VERIFY_TOKEN}
    return Handshake(
        request=Delivery(method="GET", path="/webhooks/example", query=query),
        body=challenge.encode(),
    )


def build(options: SandboxOptions) -> ASGIApp:
    """The Example Ads sandbox for ``options``."""
    data = ExampleData(
        options.seed, preset(options.size, SIZES), int(options.extra.get("days", 28))
    )
    scheme: HmacScheme = SCHEME
    fake = FakePlatform(
        "example",
        options=options,
        oauth=OAuthConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scopes=("ads.read", "ads.manage"),
            token_ttl=options.token_ttl,
        ),
        webhooks=HmacWebhooks(
            path="/webhooks/example",
            scheme=scheme,
            secret=WEBHOOK_SECRET,
            signature_header=SIGNATURE_HEADER,
            timestamp_header=TIMESTAMP_HEADER,
            sample=lambda n: _sample(data, n),
            handshake=_handshake,
        ),
        expected=data.expected,
        rate=20.0,
        burst=100,
    )

    def account_index(call: Call) -> int:
        index = data.by_id.get(call.path["account_id"])
        if index is None:
            raise SandboxError(404, "not_found", "unknown ad account")
        return index

    def listing(call: Call, items: LazyTable[dict[str, Any]], scope: str) -> Any:
        limit = read_int(call.request, "limit", default=25, maximum=25)
        page = cursor_page(items, after=call.query.get("after"), limit=limit, scope=scope)
        fields = call.query.get("fields")
        return call.json(
            {
                "data": [select_fields(r, fields) for r in page.items],
                "paging": cursor_paging(page, call.request, scope=scope),
            }
        )

    @fake.get("/v1/me")
    async def me(call: Call) -> Any:
        assert call.grant is not None
        return call.json(
            {"id": call.grant.user_id, "name": "Sandbox User", "scopes": list(call.grant.scopes)}
        )

    @fake.get("/v1/ad_accounts")
    async def ad_accounts(call: Call) -> Any:
        return listing(call, data.accounts, "accounts")

    @fake.get("/v1/ad_accounts/{account_id}/campaigns")
    async def campaigns(call: Call) -> Any:
        a = account_index(call)
        return listing(call, data.campaigns(a), f"campaigns:{a}")

    @fake.get("/v1/ad_accounts/{account_id}/ad_groups")
    async def ad_groups(call: Call) -> Any:
        a = account_index(call)
        return listing(call, data.ad_groups(a), f"ad_groups:{a}")

    @fake.get("/v1/ad_accounts/{account_id}/ads")
    async def ads(call: Call) -> Any:
        a = account_index(call)
        return listing(call, data.ads(a), f"ads:{a}")

    @fake.get("/v1/ad_accounts/{account_id}/insights", cost=2)
    async def insights(call: Call) -> Any:
        a = account_index(call)
        try:
            since = dt.date.fromisoformat(call.query["since"])
            until = dt.date.fromisoformat(call.query["until"])
        except (KeyError, ValueError):
            raise SandboxError(
                400, "invalid_request", "since and until (YYYY-MM-DD) are required"
            ) from None
        if call.query.get("level", "ad") != "ad":
            raise SandboxError(400, "invalid_request", "only level=ad is offered")
        rows = data.insights(a, since, until)
        scope = f"insights:{a}:{since}:{until}"
        limit = read_int(call.request, "limit", default=100, maximum=500)
        page = cursor_page(rows, after=call.query.get("after"), limit=limit, scope=scope)
        return call.json(
            {"data": page.items, "paging": cursor_paging(page, call.request, scope=scope)}
        )

    return fake.app()


def env(base_url: str) -> dict[str, str]:
    """The settings that point the plugin at a sandbox served at ``base_url``."""
    return sandbox_env(
        "example",
        base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        VERIFY_TOKEN=VERIFY_TOKEN,
    )
