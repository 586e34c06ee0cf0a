"""What Example Ads syncs: accounts, then per account campaigns, ad groups, ads, daily metrics.

Every collection is cursor-paged (``after`` while ``paging.next`` exists), read with the
core's :func:`~cmis_core.sync.paging.cursor_pages`. Records are mapped onto the common
model here: normalised status beside the platform's own, money as integer micros
(converted with :class:`~decimal.Decimal`, never float), the raw record kept in ``raw``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import attrs

from cmis_core import EntityKind, EntityStatus, Page, Partition, PlatformContext, Stream
from cmis_core.errors import Fatal
from cmis_core.sync.paging import CHUNK, cursor_pages, mapped
from cmis_core.sync.windows import lookback_window
from cmis_example.client import api_url

PAGE_SIZE = 100  # the API clamps to its own maximum
REPORT_PAGE_SIZE = 500
STATUS = {
    "ACTIVE": EntityStatus.ACTIVE,
    "PAUSED": EntityStatus.PAUSED,
    "ARCHIVED": EntityStatus.ARCHIVED,
    "DELETED": EntityStatus.DELETED,
}
Record = dict[str, Any]


def to_micros(amount: str | int | None) -> int | None:
    """``"12.34"`` -> ``12_340_000``: a decimal string in currency units to integer micros."""
    if amount is None or amount == "":
        return None
    if isinstance(amount, float):
        raise TypeError("money must not travel as float")
    try:
        micros = Decimal(str(amount)) * 1_000_000
    except InvalidOperation:
        raise Fatal(f"Example Ads sent an amount that is not a number: {amount!r}") from None
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def status(raw: Mapping[str, Any]) -> str:
    return str(STATUS.get(str(raw.get("status")), EntityStatus.PAUSED))


def map_account(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "external_id": str(raw["id"]),
        "name": raw.get("name"),
        "currency": raw.get("currency"),
        "timezone": raw.get("timezone"),
        "status": status(raw),
        "platform_status": raw.get("status"),
        "raw": dict(raw),
    }


def map_campaign(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "external_id": str(raw["id"]),
        "account_id": str(raw["account_id"]),
        "name": raw.get("name"),
        "status": status(raw),
        "platform_status": raw.get("status"),
        "objective": raw.get("objective"),
        "daily_budget_micros": to_micros(raw.get("daily_budget")),
        "raw": dict(raw),
    }


def map_ad_group(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "external_id": str(raw["id"]),
        "account_id": str(raw["account_id"]),
        "campaign_id": str(raw["campaign_id"]),
        "name": raw.get("name"),
        "status": status(raw),
        "platform_status": raw.get("status"),
        "bid_micros": to_micros(raw.get("bid_amount")),
        "raw": dict(raw),
    }


def map_ad(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "external_id": str(raw["id"]),
        "account_id": str(raw["account_id"]),
        "campaign_id": str(raw["campaign_id"]),
        "ad_group_id": str(raw["ad_group_id"]),
        "name": raw.get("name"),
        "status": status(raw),
        "platform_status": raw.get("status"),
        "raw": dict(raw),
    }


def map_metric(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "account_id": str(raw["account_id"]),
        "level": "ad",
        "external_id": str(raw["ad_id"]),
        "date": dt.date.fromisoformat(raw["date"]),
        "currency": raw.get("currency"),
        "impressions": int(raw.get("impressions") or 0),
        "clicks": int(raw.get("clicks") or 0),
        "spend_micros": to_micros(raw.get("spend")) or 0,
        "conversions": Decimal(str(raw.get("conversions") or "0")),
        "conversions_value_micros": to_micros(raw.get("conversion_value")) or 0,
    }


Mapper = Callable[[Mapping[str, Any], Partition], Record]


@attrs.define(kw_only=True)
class ExampleStream:
    """One cursor-paged collection; ``path`` is formatted with the partition's ``account_id``."""

    platform: str = "example"
    name: str
    entity: EntityKind
    parent: str | None
    path: str
    mapper: Mapper = attrs.field(eq=False, repr=False)
    page_size: int = PAGE_SIZE

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        if self.parent is None:
            return [Partition(key=self.name)]
        if account is None:
            raise ValueError(f"stream {self.name} reads one ad account at a time")
        account_id = str(account["external_id"])
        return [Partition(key=account_id, account_id=account_id)]

    def params(self, partition: Partition) -> dict[str, Any]:
        return {"limit": self.page_size}

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        url = api_url(ctx, self.path.format(account_id=partition.account_id))
        async for items in cursor_pages(ctx, url, params=self.params(partition), chunk=CHUNK):
            yield Page(records=mapped(items, lambda item: self.mapper(item, partition)))


@attrs.define(kw_only=True)
class MetricsStream(ExampleStream):
    """Daily ad metrics, one partition per account over the look-back window."""

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        if account is None:
            raise ValueError("daily metrics are read one ad account at a time")
        # the look-back window (CMIS_EXAMPLE_LOOKBACK_DAYS), ending yesterday in the
        # account's time zone: a metric's date is the account's day, not UTC's
        since, until = lookback_window(ctx, account, include_today=False)
        account_id = str(account["external_id"])
        return [
            Partition(
                key=f"{account_id}:{since}..{until}",
                account_id=account_id,
                params={"since": since.isoformat(), "until": until.isoformat()},
            )
        ]

    def params(self, partition: Partition) -> dict[str, Any]:
        return {"level": "ad", "limit": self.page_size, **partition.params}


def streams() -> list[Stream]:
    """Every stream of Example Ads."""
    per_account = "/ad_accounts/{account_id}"
    return [
        ExampleStream(
            name="ad_accounts",
            entity=EntityKind.AD_ACCOUNT,
            parent=None,
            path="/ad_accounts",
            mapper=map_account,
        ),
        ExampleStream(
            name="campaigns",
            entity=EntityKind.CAMPAIGN,
            parent="ad_accounts",
            path=per_account + "/campaigns",
            mapper=map_campaign,
        ),
        ExampleStream(
            name="ad_groups",
            entity=EntityKind.AD_GROUP,
            parent="ad_accounts",
            path=per_account + "/ad_groups",
            mapper=map_ad_group,
        ),
        ExampleStream(
            name="ads",
            entity=EntityKind.AD,
            parent="ad_accounts",
            path=per_account + "/ads",
            mapper=map_ad,
        ),
        MetricsStream(
            name="daily_metrics",
            entity=EntityKind.DAILY_METRIC,
            parent="ad_accounts",
            path=per_account + "/insights",
            mapper=map_metric,
            page_size=REPORT_PAGE_SIZE,
        ),
    ]
