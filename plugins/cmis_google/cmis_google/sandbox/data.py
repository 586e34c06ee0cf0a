"""The sandbox's Google Ads accounts: a manager hierarchy and each client's entities and metrics.

Everything is derived from the seed and built on demand (:class:`LazyTable`), so the
``large`` size holds 25,000 ads and their daily metrics without building them up front.
Rows are flat mappings from GAQL field path to a Python value (``"campaign.id": 123``);
the query engine filters, sorts and projects them, and encodes them as the REST API does.

Sizes:

- ``small``: one manager with three clients; 2 campaigns x 2 ad groups x 2 ads each.
- ``medium``: a manager with four clients and a sub-manager with three more, plus one
  client the user reaches directly (no manager); 4 x 3 x 3 each.
- ``large`` (benchmarks): one manager with five clients; 50 x 10 x 10 each.
- ``full`` (the sync engine's top size): five clients of 1,000 x 4 x 5 (100,000 ads).

Every client also has one lead form asset (``asset.type = LEAD_FORM``, id
``40_000_000_000`` + its number: the form its lead deliveries name) and one text asset.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from cmis_core.testing.sandbox import LazyTable, pick, rng_for

Row = dict[str, Any]
ENTITY_STATUS = {"ENABLED": 0.75, "PAUSED": 0.2, "REMOVED": 0.05}
TIMEZONES = ("America/New_York", "Europe/Paris", "Asia/Tokyo", "America/Los_Angeles", "UTC")
CURRENCIES = ("USD", "EUR", "JPY", "GBP")


@attrs.frozen
class Size:
    clients: int  # under the top manager
    sub_clients: int  # under a sub-manager (0: no sub-manager)
    standalone: int  # clients the user reaches directly, with no manager
    campaigns: int
    ad_groups: int
    ads: int


LEAD_FORM_BASE = 40_000_000_000  # lead form asset ids: base + client number (1, 2, ...)
OTHER_ASSET_BASE = 50_000_000_000  # a text asset per client, which lead form queries skip

SIZES = {
    "small": Size(3, 0, 0, 2, 2, 2),
    "medium": Size(4, 3, 1, 4, 3, 3),
    "large": Size(5, 0, 0, 50, 10, 10),
    "full": Size(5, 0, 0, 1000, 4, 5),  # 5,000 campaigns, 100,000 ads
}


@attrs.frozen(kw_only=True)
class Customer:
    """One Google Ads account: a manager or a client."""

    id: int
    name: str
    manager: bool
    currency: str
    time_zone: str
    status: str = "ENABLED"
    parent: int | None = None
    index: int = -1  # position among clients (for entity generation); -1 for managers

    def today(self) -> dt.date:
        """Today in the account's time zone (Google reports days in it)."""
        return dt.datetime.now(ZoneInfo(self.time_zone)).date()


class Accounts:
    """The hierarchy and every client's entities, derived from ``seed``."""

    def __init__(self, seed: int, size: Size, *, history_days: int = 90) -> None:
        self.seed = seed
        self.size = size
        self.history_days = history_days
        self.customers: dict[int, Customer] = {}
        top = self._add(9_000_000_001, "Sandbox Manager", manager=True)
        self.accessible: list[int] = [top.id]
        clients = 0
        for _ in range(size.clients):
            clients += 1
            self._client(clients, parent=top.id)
        if size.sub_clients:
            sub = self._add(9_000_000_002, "Sandbox Sub-manager", manager=True, parent=top.id)
            for _ in range(size.sub_clients):
                clients += 1
                self._client(clients, parent=sub.id)
        for _ in range(size.standalone):
            clients += 1
            self.accessible.append(self._client(clients, parent=None).id)

    def _add(self, cid: int, name: str, **kwargs: Any) -> Customer:
        rng = rng_for(self.seed, "customer", cid)
        customer = Customer(
            id=cid,
            name=name,
            currency=rng.choice(CURRENCIES),
            time_zone=rng.choice(TIMEZONES),
            **kwargs,
        )
        self.customers[cid] = customer
        return customer

    def _client(self, n: int, *, parent: int | None) -> Customer:
        index = n - 1
        return self._add(
            1_000_000_000 + n * 111,
            f"Sandbox Client {n}",
            manager=False,
            parent=parent,
            index=index,
        )

    # ------------------------------------------------------------------ hierarchy
    @property
    def clients(self) -> list[Customer]:
        return [c for c in self.customers.values() if not c.manager]

    def children(self, cid: int) -> list[Customer]:
        return [c for c in self.customers.values() if c.parent == cid]

    def descendants(self, cid: int, level: int = 0) -> Iterator[tuple[Customer, int]]:
        """``cid`` itself (level 0) and everything under it, with its distance."""
        yield self.customers[cid], level
        for child in self.children(cid):
            yield from self.descendants(child.id, level + 1)

    def manages(self, manager: int, cid: int) -> bool:
        """Whether ``cid`` is ``manager`` or below it."""
        node: int | None = cid
        while node is not None:
            if node == manager:
                return True
            node = self.customers[node].parent
        return False

    # ------------------------------------------------------------------ rows
    def customer_rows(self, cid: int) -> list[Row]:
        rows = []
        for customer, level in self.descendants(cid):
            rows.append(
                {
                    "customer_client.resource_name": (
                        f"customers/{cid}/customerClients/{customer.id}"
                    ),
                    "customer_client.client_customer": f"customers/{customer.id}",
                    "customer_client.id": customer.id,
                    "customer_client.descriptive_name": customer.name,
                    "customer_client.currency_code": customer.currency,
                    "customer_client.time_zone": customer.time_zone,
                    "customer_client.status": customer.status,
                    "customer_client.manager": customer.manager,
                    "customer_client.level": level,
                    "customer_client.test_account": False,
                    "customer_client.hidden": False,
                }
            )
        return rows

    def customer_row(self, cid: int) -> Row:
        c = self.customers[cid]
        return {
            "customer.resource_name": f"customers/{cid}",
            "customer.id": cid,
            "customer.descriptive_name": c.name,
            "customer.currency_code": c.currency,
            "customer.time_zone": c.time_zone,
            "customer.manager": c.manager,
            "customer.status": c.status,
            "customer.test_account": False,
        }

    @functools.cache  # noqa: B019 (one per client; lives as long as the sandbox)
    def campaigns(self, cid: int) -> LazyTable[Row]:
        c = self.customers[cid]

        def make(i: int) -> Row:
            rng = rng_for(self.seed, "campaign", cid, i)
            campaign_id = (c.index + 1) * 1_000_000 + i + 1
            return {
                "customer.id": cid,
                "campaign.resource_name": f"customers/{cid}/campaigns/{campaign_id}",
                "campaign.id": campaign_id,
                "campaign.name": f"Campaign {i + 1}",
                "campaign.status": pick(rng, ENTITY_STATUS),
                "campaign.advertising_channel_type": rng.choice(["SEARCH", "DISPLAY", "VIDEO"]),
                "campaign.bidding_strategy_type": rng.choice(["MANUAL_CPC", "MAXIMIZE_CLICKS"]),
                "campaign_budget.amount_micros": rng.randint(10, 500) * 1_000_000,
            }

        return LazyTable(self.size.campaigns, make)

    @functools.cache  # noqa: B019
    def ad_groups(self, cid: int) -> LazyTable[Row]:
        per = self.size.ad_groups
        campaigns = self.campaigns(cid)

        def make(i: int) -> Row:
            c, g = divmod(i, per)
            campaign = campaigns[c]
            rng = rng_for(self.seed, "ad_group", cid, c, g)
            group_id = campaign["campaign.id"] * 100 + g + 1
            return {
                "customer.id": cid,
                "campaign.id": campaign["campaign.id"],
                "campaign.name": campaign["campaign.name"],
                "campaign.status": campaign["campaign.status"],
                "ad_group.resource_name": f"customers/{cid}/adGroups/{group_id}",
                "ad_group.id": group_id,
                "ad_group.name": f"Ad group {c + 1}.{g + 1}",
                "ad_group.status": pick(rng, ENTITY_STATUS),
                "ad_group.type": "SEARCH_STANDARD",
                "ad_group.campaign": campaign["campaign.resource_name"],
                "ad_group.cpc_bid_micros": rng.randint(5, 300) * 10_000,
            }

        return LazyTable(len(campaigns) * per, make)

    @functools.cache  # noqa: B019
    def ads(self, cid: int) -> LazyTable[Row]:
        per = self.size.ads
        groups = self.ad_groups(cid)

        def make(i: int) -> Row:
            g, n = divmod(i, per)
            group = groups[g]
            rng = rng_for(self.seed, "ad", cid, g, n)
            ad_id = group["ad_group.id"] * 100 + n + 1
            return {
                "customer.id": cid,
                "campaign.id": group["campaign.id"],
                "ad_group.id": group["ad_group.id"],
                "ad_group.name": group["ad_group.name"],
                "ad_group_ad.resource_name": (
                    f"customers/{cid}/adGroupAds/{group['ad_group.id']}~{ad_id}"
                ),
                "ad_group_ad.status": pick(rng, ENTITY_STATUS),
                "ad_group_ad.ad.id": ad_id,
                "ad_group_ad.ad.name": f"Ad {g + 1}.{n + 1}" if rng.random() < 0.7 else "",
                "ad_group_ad.ad.type": rng.choice(["RESPONSIVE_SEARCH_AD", "IMAGE_AD"]),
                "ad_group_ad.ad.final_urls": [f"https://shop.example/p/{ad_id}"],
            }

        return LazyTable(len(groups) * per, make)

    def lead_form_id(self, cid: int) -> int:
        """The id of client ``cid``'s lead form asset (what its lead deliveries name)."""
        return LEAD_FORM_BASE + self.customers[cid].index + 1

    def assets(self, cid: int) -> list[Row]:
        """The client's assets: one lead form and one text asset (``FROM asset``)."""
        rows = []
        for asset_id, name, kind in (
            (self.lead_form_id(cid), f"Lead form {self.customers[cid].index + 1}", "LEAD_FORM"),
            (OTHER_ASSET_BASE + self.customers[cid].index + 1, "Headline", "TEXT"),
        ):
            rows.append(
                {
                    "customer.id": cid,
                    "asset.resource_name": f"customers/{cid}/assets/{asset_id}",
                    "asset.id": asset_id,
                    "asset.name": name,
                    "asset.type": kind,
                }
            )
        return rows

    # ------------------------------------------------------------------ metrics
    def days(self, cid: int) -> list[dt.date]:
        """The days the account has metrics for: ``history_days`` up to today, in its zone."""
        today = self.customers[cid].today()
        return [today - dt.timedelta(days=n) for n in range(self.history_days - 1, -1, -1)]

    @functools.lru_cache(maxsize=200_000)  # noqa: B019
    def ad_metrics(self, cid: int, ad_index: int, day: str) -> tuple[int, int, int, Decimal, int]:
        """Impressions, clicks, cost micros, conversions, conversion value micros of one ad-day."""
        rng = rng_for(self.seed, "metric", cid, ad_index, day)
        impressions = rng.randint(1, 5_000)
        clicks = rng.randint(0, max(1, impressions // 15))
        cost = clicks * rng.randint(50_000, 2_000_000)
        conversions = Decimal(rng.randint(0, clicks * 10)) / 100
        value = int(conversions * rng.randint(5, 80)) * 1_000_000
        return impressions, clicks, cost, conversions, value

    def metrics(self, cid: int, level: str, index: int, day: str) -> Mapping[str, Any]:
        """Metrics of one entity on one day: ad groups and campaigns sum their ads."""
        per_group, per_campaign = self.size.ads, self.size.ads * self.size.ad_groups
        if level == "ad_group_ad":
            ads = range(index, index + 1)
        elif level == "ad_group":
            ads = range(index * per_group, (index + 1) * per_group)
        else:
            ads = range(index * per_campaign, (index + 1) * per_campaign)
        impressions = clicks = cost = value = 0
        conversions = Decimal(0)
        for ad in ads:
            i, c, s, n, v = self.ad_metrics(cid, ad, day)
            impressions, clicks, cost, conversions, value = (
                impressions + i,
                clicks + c,
                cost + s,
                conversions + n,
                value + v,
            )
        return {
            "metrics.impressions": impressions,
            "metrics.clicks": clicks,
            "metrics.cost_micros": cost,
            "metrics.conversions": float(conversions),
            "metrics.conversions_value": value / 1_000_000,
        }
