"""The sandbox's ad data: deterministic for a seed, built lazily, sized by a preset.

Ids are numeric strings as Graph's are, with a kind prefix so any ``/{id}`` can be resolved
without an index: ``120`` campaign, ``121`` ad set, ``122`` ad, ``123`` creative, ``124``
lead, ``125`` form, ``126`` page, then three digits of account and nine of position.
Ad accounts are ``act_<n>``. Every ad delivers on every day of the data window, so the
ground truth is arithmetic (the bench preset holds exactly 150,000 ad-day rows).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from cmis_core.testing.sandbox import LazyTable, last_days, pick, rng_for

KIND_PREFIX = {
    "campaign": "120",
    "adset": "121",
    "ad": "122",
    "creative": "123",
    "lead": "124",
    "form": "125",
    "page": "126",
}
PREFIX_KIND = {v: k for k, v in KIND_PREFIX.items()}
STATUSES = {"ACTIVE": 0.7, "PAUSED": 0.2, "ARCHIVED": 0.06, "DELETED": 0.04}
HIDDEN = frozenset({"ARCHIVED", "DELETED"})  # left out of listings and insights unless asked
CURRENCIES = ("USD", "EUR", "JPY")
ACTION_TYPES = ("link_click", "lead", "omni_purchase", "omni_complete_registration", "video_view")


@attrs.frozen
class Size:
    accounts: int
    campaigns: int  # per account
    adsets: int  # per campaign
    ads: int  # per ad set
    days: int
    forms: int  # per account (one page per account)
    leads: int  # per form


SIZES = {
    "small": Size(2, 6, 2, 2, 10, 2, 5),
    "medium": Size(3, 40, 3, 3, 28, 3, 40),
    # the bench workload: 200 campaigns, 1,000 ad sets, 5,000 ads, 150,000 ad-day rows
    "bench": Size(1, 200, 5, 5, 30, 4, 250),
    # the sync engine's top size: 5,000 campaigns, 100,000 ads, 3,000,000 ad-day rows
    "full": Size(5, 1000, 4, 5, 30, 4, 250),
}


class FastRng:
    """A small deterministic generator for the hot path (150,000 insight rows): an LCG
    seeded arithmetically from its parts, the same in every process."""

    def __init__(self, *parts: int) -> None:
        state = 0x9E3779B97F4A7C15
        for part in parts:
            state = ((state ^ part) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
        self.state = state

    def randint(self, low: int, high: int) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return low + (self.state >> 11) % (high - low + 1)


def make_id(kind: str, account: int, index: int) -> str:
    return f"{KIND_PREFIX[kind]}{account:03d}{index:09d}"


def parse_id(object_id: str) -> tuple[str, int, int] | None:
    """``(kind, account index, position)`` of a sandbox id, or ``None``."""
    if len(object_id) != 15 or not object_id.isdigit():
        return None
    kind = PREFIX_KIND.get(object_id[:3])
    if kind is None:
        return None
    return kind, int(object_id[3:6]), int(object_id[6:])


def graph_time(moment: dt.datetime) -> str:
    """Graph's timestamp format: ``2026-11-20T10:00:00+0000``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _minor(rng: Any, low: int, high: int) -> str:
    return str(rng.randint(low, high))


class MetaData:
    """Every record of one sandbox; entity ``updated_time`` can be moved by :meth:`touch`."""

    def __init__(self, seed: int, size: Size, *, now: dt.datetime | None = None) -> None:
        self.seed = seed
        self.size = size
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.accounts = LazyTable(size.accounts, self._account)
        self.touched: dict[str, dt.datetime] = {}

    # ------------------------------------------------------------------ accounts
    def account_index(self, account_id: str) -> int | None:
        if not account_id.startswith("act_"):
            return None
        try:
            index = int(account_id[4:]) - 100_000_000
        except ValueError:
            return None
        return index if 0 <= index < self.size.accounts else None

    def days(self, a: int) -> list[dt.date]:
        """Account ``a``'s days of insights: the whole days before today in its time zone
        (Meta reports dates in the ad account's time zone)."""
        zone = ZoneInfo(self.accounts[a]["timezone_name"])
        return last_days(self.size.days, today=self.now.astimezone(zone).date())

    def _account(self, a: int) -> dict[str, Any]:
        rng = rng_for(self.seed, "account", a)
        number = str(100_000_000 + a)
        return {
            "id": f"act_{number}",
            "account_id": number,
            "name": f"Sandbox account {a + 1}",
            "currency": CURRENCIES[a % len(CURRENCIES)],
            "timezone_name": rng.choice(["Europe/Paris", "America/New_York", "Asia/Tokyo"]),
            "account_status": 1,
            "amount_spent": _minor(rng, 0, 10_000_000),
            "created_time": graph_time(self.now - dt.timedelta(days=400)),
        }

    # ------------------------------------------------------------------ entities
    def _updated(self, object_id: str, rng: Any) -> str:
        moment = self.touched.get(object_id) or self.now - dt.timedelta(
            seconds=rng.randint(3600, 60 * 86400)
        )
        return graph_time(moment)

    def _status(self, rng: Any) -> str:
        return pick(rng, STATUSES)

    @functools.cache  # noqa: B019 (one per account; the data lives as long as the app)
    def campaigns(self, a: int) -> LazyTable[dict[str, Any]]:
        account = self.accounts[a]

        def make(c: int) -> dict[str, Any]:
            rng = rng_for(self.seed, "campaign", a, c)
            cid = make_id("campaign", a, c)
            status = self._status(rng)
            return {
                "id": cid,
                "account_id": account["account_id"],
                "name": f"Campaign {c + 1}",
                "status": status,
                "configured_status": status,
                "effective_status": status,
                "objective": rng.choice(["OUTCOME_TRAFFIC", "OUTCOME_LEADS", "OUTCOME_SALES"]),
                "daily_budget": _minor(rng, 1_000, 50_000),
                "buying_type": "AUCTION",
                "created_time": graph_time(self.now - dt.timedelta(days=90)),
                "updated_time": self._updated(cid, rng),
            }

        return LazyTable(self.size.campaigns, make, cache=self.size.campaigns)

    @functools.cache  # noqa: B019
    def adsets(self, a: int) -> LazyTable[dict[str, Any]]:
        account, per = self.accounts[a], self.size.adsets

        def make(i: int) -> dict[str, Any]:
            c = i // per
            rng = rng_for(self.seed, "adset", a, i)
            sid = make_id("adset", a, i)
            campaign = self.campaigns(a)[c]
            status = self._status(rng)
            effective = status if campaign["status"] == "ACTIVE" else "CAMPAIGN_PAUSED"
            return {
                "id": sid,
                "account_id": account["account_id"],
                "campaign_id": campaign["id"],
                "name": f"Ad set {c + 1}.{i % per + 1}",
                "status": status,
                "configured_status": status,
                "effective_status": status if status in HIDDEN else effective,
                "optimization_goal": rng.choice(
                    ["LINK_CLICKS", "LEAD_GENERATION", "OFFSITE_CONVERSIONS"]
                ),
                "billing_event": "IMPRESSIONS",
                "bid_amount": int(_minor(rng, 10, 500)),
                "daily_budget": _minor(rng, 500, 20_000),
                "created_time": graph_time(self.now - dt.timedelta(days=80)),
                "updated_time": self._updated(sid, rng),
            }

        count = self.size.campaigns * per
        return LazyTable(count, make, cache=count)

    @functools.cache  # noqa: B019
    def ads(self, a: int) -> LazyTable[dict[str, Any]]:
        account, per = self.accounts[a], self.size.ads

        def make(i: int) -> dict[str, Any]:
            s = i // per
            rng = rng_for(self.seed, "ad", a, i)
            aid = make_id("ad", a, i)
            adset = self.adsets(a)[s]
            status = self._status(rng)
            return {
                "id": aid,
                "account_id": account["account_id"],
                "campaign_id": adset["campaign_id"],
                "adset_id": adset["id"],
                "name": f"Ad {s + 1}.{i % per + 1}",
                "status": status,
                "configured_status": status,
                "effective_status": status,
                "creative": {"id": make_id("creative", a, i)},
                "created_time": graph_time(self.now - dt.timedelta(days=70)),
                "updated_time": self._updated(aid, rng),
            }

        count = self.size.campaigns * self.size.adsets * per
        return LazyTable(count, make, cache=count)

    @functools.cache  # noqa: B019
    def creatives(self, a: int) -> LazyTable[dict[str, Any]]:
        account = self.accounts[a]

        def make(i: int) -> dict[str, Any]:
            rng = rng_for(self.seed, "creative", a, i)
            return {
                "id": make_id("creative", a, i),
                "account_id": account["account_id"],
                "name": f"Creative {i + 1}",
                "title": rng.choice(["Try it today", "Limited offer", "New season"]),
                "body": "Sandbox creative body",
                "object_type": rng.choice(["SHARE", "VIDEO", "PHOTO"]),
                "status": "ACTIVE",
                "thumbnail_url": f"https://sandbox.invalid/thumb/{i}.jpg",
            }

        return LazyTable(len(self.ads(a)), make)

    def visible(
        self, table: LazyTable[dict[str, Any]], statuses: frozenset[str] | None
    ) -> list[int]:
        """Positions of ``table`` listed for ``statuses`` (default: all but archived/deleted)."""
        return [
            i
            for i, record in enumerate(table)
            if (
                record["effective_status"] in statuses
                if statuses
                else record["effective_status"] not in HIDDEN
            )
        ]

    def touch(self, kind: str, count: int) -> list[str]:
        """Mark the first ``count`` visible entities of ``kind`` as updated now."""
        table = {"campaigns": self.campaigns, "adsets": self.adsets, "ads": self.ads}[kind]
        touched: list[str] = []
        moment = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        for a in range(self.size.accounts):
            items = table(a)
            for i in range(len(items)):
                if len(touched) >= count:
                    break
                object_id = items[i]["id"]
                self.touched[object_id] = moment
                touched.append(object_id)
        for a in range(self.size.accounts):
            table(a)._make.cache_clear()
        return touched

    # ------------------------------------------------------------------ insights
    def insight(self, a: int, ad_index: int, day: dt.date) -> dict[str, Any]:
        """One ad-day row as Graph returns it (numbers as strings, money in units)."""
        ad = self.ads(a)[ad_index]
        rng = FastRng(self.seed, a, ad_index, day.toordinal())
        impressions = rng.randint(100, 20_000)
        clicks = rng.randint(0, impressions // 20)
        currency = self.accounts[a]["currency"]
        cents = rng.randint(0, 30_000)
        spend = str(cents) if currency == "JPY" else str(Decimal(cents).scaleb(-2))
        actions, values = [], []
        for kind in ACTION_TYPES:
            n = rng.randint(0, max(1, clicks // 5))
            if n:
                click, view = n - n // 3, n // 3
                actions.append(
                    {
                        "action_type": kind,
                        "value": str(n),
                        "7d_click": str(click),
                        "1d_view": str(view),
                    }
                )
                if kind == "omni_purchase":
                    amount = str(Decimal(rng.randint(100, 90_000)).scaleb(-2))
                    values.append(
                        {"action_type": kind, "value": amount, "7d_click": amount, "1d_view": "0"}
                    )
        return {
            "account_id": ad["account_id"],
            "account_currency": currency,
            "campaign_id": ad["campaign_id"],
            "adset_id": ad["adset_id"],
            "ad_id": ad["id"],
            "date_start": day.isoformat(),
            "date_stop": day.isoformat(),
            "impressions": str(impressions),
            "clicks": str(clicks),
            "spend": spend,
            "actions": actions,
            "action_values": values,
        }

    def account_insight(self, a: int, day: dt.date) -> dict[str, Any]:
        """The account-level row of one day (its own totals, deterministic)."""
        account = self.accounts[a]
        rng = rng_for(self.seed, "account-metric", a, day.toordinal())
        impressions = rng.randint(10_000, 2_000_000)
        return {
            "account_id": account["account_id"],
            "account_currency": account["currency"],
            "date_start": day.isoformat(),
            "date_stop": day.isoformat(),
            "impressions": str(impressions),
            "clicks": str(rng.randint(0, impressions // 20)),
            "spend": str(Decimal(rng.randint(0, 5_000_000)).scaleb(-2)),
            "actions": [{"action_type": "lead", "value": str(rng.randint(0, 50))}],
            "action_values": [],
        }

    # ------------------------------------------------------------------ pages, forms, leads
    def page(self, a: int) -> dict[str, Any]:
        return {"id": make_id("page", a, 0), "name": f"Sandbox page {a + 1}"}

    def forms(self, a: int) -> list[dict[str, Any]]:
        return [
            {
                "id": make_id("form", a, f),
                "name": f"Form {f + 1}",
                "status": "ACTIVE",
                "page_id": self.page(a)["id"],
            }
            for f in range(self.size.forms)
        ]

    def lead(self, a: int, index: int) -> dict[str, Any]:
        f, n = divmod(index, self.size.leads)
        rng = rng_for(self.seed, "lead", a, index)
        ads = self.ads(a)
        ad = ads[rng.randrange(len(ads))]
        created = self.now - dt.timedelta(minutes=(self.size.leads - n) * 37 + f)
        return {
            "id": make_id("lead", a, index),
            "created_time": graph_time(created),
            "ad_id": ad["id"],
            "ad_name": ad["name"],
            "adset_id": ad["adset_id"],
            "campaign_id": ad["campaign_id"],
            "form_id": make_id("form", a, f),
            "is_organic": False,
            "platform": rng.choice(["fb", "ig"]),
            "field_data": [
                {"name": "email", "values": [f"person{index}@example.invalid"]},
                {"name": "full_name", "values": [f"Person {index}"]},
            ],
        }

    def leads_of_form(self, a: int, f: int) -> list[dict[str, Any]]:
        return [self.lead(a, f * self.size.leads + n) for n in range(self.size.leads)]

    # ------------------------------------------------------------------ ground truth
    def expected(self) -> Mapping[str, int]:
        """Records per stream a complete first sync reads (archived and deleted included)."""
        n = self.size
        accounts, ads = n.accounts, n.accounts * n.campaigns * n.adsets * n.ads
        return {
            "ad_accounts": accounts,
            "campaigns": accounts * n.campaigns,
            "ad_groups": accounts * n.campaigns * n.adsets,
            "ads": ads,
            "creatives": ads,
            "daily_metrics_ad": ads * n.days,
            "daily_metrics_account": accounts * n.days,
            "leads": accounts * n.forms * n.leads,
        }
