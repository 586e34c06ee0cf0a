"""What Google Ads syncs, each stream a GAQL query built from its definition.

- ``ad_accounts``: ``customers:listAccessibleCustomers`` (or only
  ``CMIS_GOOGLE_LOGIN_CUSTOMER_ID`` when set), then ``FROM customer_client`` under each of
  them (``searchStream``: a hierarchy is small), so one connection yields every client
  account below every manager the user reaches, with its currency and time zone. Each
  account remembers the manager it was reached through (``raw.login_customer_id``), and
  every later call for it sends that as ``login-customer-id``. Managers are walked, not
  synced. A manager that refuses (permission, not enabled) is skipped and logged; when
  every one refuses, the first error is raised.
- ``campaigns``, ``ad_groups``, ``ads`` (``ad_group_ad``): ``search`` per account, paged by
  ``nextPageToken``.
- ``campaign_metrics``, ``ad_group_metrics``, ``ad_metrics``: ``segments.date``,
  impressions, clicks, ``cost_micros``, conversions and conversion value per day, over the
  look-back window (``CMIS_GOOGLE_LOOKBACK_DAYS``, default 14, ending today in the
  account's time zone), re-read on every sync because Google restates conversions.

Accounts that are not ``ENABLED`` (cancelled, suspended, closed) get no partitions. Rows
arrive as REST JSON (camelCase, int64 as strings, zero values omitted); fields are read
by their GAQL path with :func:`field`, so a mapper names what its query selects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import structlog

from cmis_core import EntityKind, EntityStatus, Page, Partition, PlatformContext, Stream
from cmis_core.errors import AccountFailed, Fatal
from cmis_core.sync.paging import mapped
from cmis_google.client import (
    NAME,
    customer_id,
    list_accessible_customers,
    login_customer_id,
    search,
    search_stream,
)
from cmis_google.gaql import Condition, Query

log = structlog.get_logger(__name__)
Record = dict[str, Any]
Row = Mapping[str, Any]
STATUS = {
    "ENABLED": EntityStatus.ACTIVE,
    "PAUSED": EntityStatus.PAUSED,
    "REMOVED": EntityStatus.DELETED,
}
ACCOUNT_STATUS = {
    "ENABLED": EntityStatus.ACTIVE,
    "SUSPENDED": EntityStatus.PAUSED,
    "CANCELED": EntityStatus.ARCHIVED,
    "CLOSED": EntityStatus.DELETED,
}


# ------------------------------------------------------------------------------ reading rows
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def field(row: Row, path: str) -> Any:
    """The value at GAQL ``path`` (``metrics.cost_micros``) in a REST row, or ``None``."""
    node: Any = row
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(_camel(part))
    return node


def int64(row: Row, path: str) -> int:
    """An int64 field (sent as a string); an omitted field is zero."""
    value = field(row, path)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        raise Fatal(f"Google Ads sent a non-integer {path}: {value!r}", platform=NAME) from None


def decimal(row: Row, path: str) -> Decimal:
    """A double field as a Decimal (from its shortest repr, never through float arithmetic)."""
    value = field(row, path)
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        raise Fatal(f"Google Ads sent a non-number {path}: {value!r}", platform=NAME) from None


def units_to_micros(amount: Decimal) -> int:
    """Currency units (``conversions_value``) to integer micros."""
    return int((amount * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _status(table: Mapping[str, EntityStatus], value: Any) -> str:
    return str(table.get(str(value), EntityStatus.PAUSED))


def _raw(row: Row) -> dict[str, Any]:
    """The row as kept in ``raw``: a row parsed from an answer is a plain dict of JSON values
    used once, so it is kept as is (no second copy); any other mapping is copied."""
    if type(row) is dict:
        return row
    copy: dict[str, Any] = json.loads(json.dumps(row))  # a plain, JSON-safe copy
    return copy


# ------------------------------------------------------------------------------ mappers
def map_account(row: Row, *, login: str) -> Record:
    status = field(row, "customer_client.status")
    raw = {**_raw(row.get("customerClient") or {}), "login_customer_id": login}
    return {
        "external_id": str(field(row, "customer_client.id")),
        "name": field(row, "customer_client.descriptive_name") or None,
        "currency": field(row, "customer_client.currency_code"),
        "timezone": field(row, "customer_client.time_zone"),
        "status": _status(ACCOUNT_STATUS, status),
        "platform_status": status,
        "raw": raw,
    }


def map_campaign(row: Row, partition: Partition) -> Record:
    status = field(row, "campaign.status")
    budget = field(row, "campaign_budget.amount_micros")
    return {
        "external_id": str(field(row, "campaign.id")),
        "account_id": partition.account_id,
        "name": field(row, "campaign.name"),
        "status": _status(STATUS, status),
        "platform_status": status,
        "objective": field(row, "campaign.advertising_channel_type"),
        "daily_budget_micros": int64(row, "campaign_budget.amount_micros") if budget else None,
        "raw": _raw(row),
    }


def map_ad_group(row: Row, partition: Partition) -> Record:
    status = field(row, "ad_group.status")
    bid = field(row, "ad_group.cpc_bid_micros")
    return {
        "external_id": str(field(row, "ad_group.id")),
        "account_id": partition.account_id,
        "campaign_id": str(field(row, "campaign.id")),
        "name": field(row, "ad_group.name"),
        "status": _status(STATUS, status),
        "platform_status": status,
        "bid_micros": int64(row, "ad_group.cpc_bid_micros") if bid else None,
        "raw": _raw(row),
    }


def map_ad(row: Row, partition: Partition) -> Record:
    status = field(row, "ad_group_ad.status")
    return {
        "external_id": str(field(row, "ad_group_ad.ad.id")),
        "account_id": partition.account_id,
        "campaign_id": str(field(row, "campaign.id")),
        "ad_group_id": str(field(row, "ad_group.id")),
        "name": field(row, "ad_group_ad.ad.name") or None,
        "status": _status(STATUS, status),
        "platform_status": status,
        "raw": _raw(row),
    }


METRIC_FIELDS = (
    "segments.date",
    "metrics.impressions",
    "metrics.clicks",
    "metrics.cost_micros",
    "metrics.conversions",
    "metrics.conversions_value",
)


def metric_mapper(level: str, id_path: str) -> Mapper:
    """A mapper for daily metrics at ``level``, the entity's id read from ``id_path``."""

    def mapper(row: Row, partition: Partition) -> Record:
        return {
            "account_id": partition.account_id,
            "level": level,
            "external_id": str(field(row, id_path)),
            "date": dt.date.fromisoformat(str(field(row, "segments.date"))),
            "currency": partition.params.get("currency"),
            "impressions": int64(row, "metrics.impressions"),
            "clicks": int64(row, "metrics.clicks"),
            "spend_micros": int64(row, "metrics.cost_micros"),
            "conversions": decimal(row, "metrics.conversions"),
            "conversions_value_micros": units_to_micros(decimal(row, "metrics.conversions_value")),
        }

    return mapper


Mapper = Callable[[Row, Partition], Record]


# ------------------------------------------------------------------------------ streams
ACCOUNTS_QUERY = Query(
    resource="customer_client",
    fields=(
        "customer_client.id",
        "customer_client.descriptive_name",
        "customer_client.currency_code",
        "customer_client.time_zone",
        "customer_client.status",
        "customer_client.manager",
        "customer_client.level",
    ),
)


def _account_raw(account: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = account.get("raw") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = {}
    return raw if isinstance(raw, Mapping) else {}


@attrs.define(kw_only=True)
class AccountsStream:
    """Every client account reachable through the user's managers (the root stream)."""

    platform: str = NAME
    name: str = "ad_accounts"
    entity: EntityKind = EntityKind.AD_ACCOUNT
    parent: str | None = None
    query: Query = ACCOUNTS_QUERY

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        return [Partition(key=self.name)]

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        login = login_customer_id(ctx)
        roots = [login] if login else await list_accessible_customers(ctx)
        seen: set[str] = set()
        failures: list[AccountFailed] = []
        for root in roots:
            try:
                rows = await search_stream(ctx, root, self.query, login=root)
            except AccountFailed as exc:
                log.warning("google.manager_skipped", customer=root, code=exc.code)
                failures.append(exc)
                continue
            records: list[Mapping[str, Any]] = []
            for row in rows:
                cid = str(field(row, "customer_client.id"))
                if field(row, "customer_client.manager") or cid in seen:
                    continue
                seen.add(cid)
                records.append(map_account(row, login=root))
            yield Page(records=records)
        if failures and len(failures) == len(roots):
            raise failures[0]


@attrs.define(kw_only=True)
class EntityStream:
    """One GAQL resource read per account (campaigns, ad groups, ads)."""

    platform: str = NAME
    name: str
    entity: EntityKind
    parent: str | None = "ad_accounts"
    resource: str
    fields: tuple[str, ...]
    mapper: Mapper = attrs.field(eq=False, repr=False)

    def account_partition(
        self, ctx: PlatformContext, account: Mapping[str, Any] | None, **params: Any
    ) -> Partition | None:
        """The account's id and login manager, or ``None`` for an account not enabled."""
        if account is None:
            raise ValueError(f"stream {self.name} reads one Google Ads account at a time")
        if account.get("platform_status") not in (None, "ENABLED"):
            return None
        cid = customer_id(str(account["external_id"]))
        login = _account_raw(account).get("login_customer_id") or login_customer_id(ctx)
        return Partition(
            key=cid, account_id=cid, params={"login_customer_id": login or None, **params}
        )

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        partition = self.account_partition(ctx, account)
        return [] if partition is None else [partition]

    def query(self, partition: Partition) -> Query:
        """The GAQL this stream sends for ``partition``."""
        return Query(resource=self.resource, fields=self.fields)

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        assert partition.account_id is not None
        login = partition.params.get("login_customer_id")
        chunks = search(ctx, partition.account_id, self.query(partition), login=login)
        async for rows in chunks:
            # mapped, then the parsed rows freed before the page waits for the writer
            yield Page(records=mapped(rows, lambda row: self.mapper(row, partition)))


def today_in(zone: Any) -> dt.date:
    """Today in the account's time zone (UTC when it is unknown)."""
    try:
        return dt.datetime.now(ZoneInfo(str(zone))).date()
    except (ZoneInfoNotFoundError, ValueError):
        return dt.datetime.now(dt.UTC).date()


@attrs.define(kw_only=True)
class MetricsStream(EntityStream):
    """Daily metrics of one level over the look-back window, one partition per account."""

    entity: EntityKind = EntityKind.DAILY_METRIC

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        if account is None:
            raise ValueError(f"stream {self.name} reads one Google Ads account at a time")
        days = max(1, ctx.settings.lookback_days(ctx.platform.lookback_days))
        until = today_in(account.get("timezone"))
        since = until - dt.timedelta(days=days - 1)
        partition = self.account_partition(
            ctx,
            account,
            since=since.isoformat(),
            until=until.isoformat(),
            currency=account.get("currency"),
        )
        if partition is None:
            return []
        return [attrs.evolve(partition, key=f"{partition.account_id}:{since}..{until}")]

    def query(self, partition: Partition) -> Query:
        since = dt.date.fromisoformat(partition.params["since"])
        until = dt.date.fromisoformat(partition.params["until"])
        return Query(
            resource=self.resource,
            fields=self.fields,
            where=(Condition("segments.date", "BETWEEN", (since, until)),),
        )


def streams() -> list[Stream]:
    """Every stream of Google Ads."""
    return [
        AccountsStream(),
        EntityStream(
            name="campaigns",
            entity=EntityKind.CAMPAIGN,
            resource="campaign",
            fields=(
                "campaign.id",
                "campaign.name",
                "campaign.status",
                "campaign.advertising_channel_type",
                "campaign_budget.amount_micros",
            ),
            mapper=map_campaign,
        ),
        EntityStream(
            name="ad_groups",
            entity=EntityKind.AD_GROUP,
            resource="ad_group",
            fields=(
                "ad_group.id",
                "ad_group.name",
                "ad_group.status",
                "ad_group.type",
                "ad_group.cpc_bid_micros",
                "campaign.id",
            ),
            mapper=map_ad_group,
        ),
        EntityStream(
            name="ads",
            entity=EntityKind.AD,
            resource="ad_group_ad",
            fields=(
                "ad_group_ad.ad.id",
                "ad_group_ad.ad.name",
                "ad_group_ad.ad.type",
                "ad_group_ad.ad.final_urls",
                "ad_group_ad.status",
                "ad_group.id",
                "campaign.id",
            ),
            mapper=map_ad,
        ),
        MetricsStream(
            name="campaign_metrics",
            resource="campaign",
            fields=("campaign.id", *METRIC_FIELDS),
            mapper=metric_mapper("campaign", "campaign.id"),
        ),
        MetricsStream(
            name="ad_group_metrics",
            resource="ad_group",
            fields=("ad_group.id", *METRIC_FIELDS),
            mapper=metric_mapper("ad_group", "ad_group.id"),
        ),
        MetricsStream(
            name="ad_metrics",
            resource="ad_group_ad",
            fields=("ad_group_ad.ad.id", *METRIC_FIELDS),
            mapper=metric_mapper("ad", "ad_group_ad.ad.id"),
        ),
    ]
