"""What Meta syncs, designed for few requests: account-level edges with large pages.

- ``ad_accounts``: ``GET /me/adaccounts``.
- ``campaigns``, ``ad_groups`` (ad sets), ``ads``: ``GET /act_<id>/campaigns|adsets|ads``
  with field selection, ``limit`` (``CMIS_META_PAGE_SIZE``, default 500), every status
  (``<level>.effective_status IN [...]``: archived and deleted too), and after the first
  sync only what changed (``<level>.updated_time GREATER_THAN`` the stored watermark, less
  a five-minute overlap). Never per-parent fan-out.
- ``creatives``: ``GET /act_<id>/adcreatives`` (Graph offers no updated_time filter).
- ``daily_metrics_ad`` and ``daily_metrics_account``: see :mod:`cmis_meta.insights`;
  partitions of ``CMIS_META_DAYS_PER_JOB`` days from the last day read less the look-back
  (``CMIS_META_LOOKBACK_DAYS``, default 28), or ``CMIS_META_HISTORY_DAYS`` on the first sync;
  ad level reads ``CMIS_META_REPORT_RUNS_AT_ONCE`` partitions (report runs) at once.
- ``leads``: ``/act_<id>/promote_pages`` -> ``/<page>/leadgen_forms`` ->
  ``/<form>/leads`` filtered on ``time_created``. Every page and form walked is yielded
  as a route (``Page.routes``: ``("page", <page id>)``, ``("form", <form id>)``), so
  ``leadgen`` webhooks about them route to this integration before their first lead.

State (``Page.state``, flat keys): ``watermark:act_<id>`` (unix seconds of the newest
``updated_time`` or lead ``created_time``), ``metrics_until:act_<id>`` (last day read) and
``inflight:<partition key>`` (a report run in progress). Targeted partitions, for webhook
events: ``params={"ids": [...]}`` on entity streams (``GET /?ids=``), ``{"lead_id": ...}``
on ``leads``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import attrs

from cmis_core import EntityKind, EntityStatus, Page, Partition, PlatformContext, Stream
from cmis_core.sync.paging import CHUNK, cursor_pages, mapped, request_json
from cmis_core.sync.windows import account_today
from cmis_meta.client import graph_url, minor_to_micros
from cmis_meta.config import MetaConfig
from cmis_meta.insights import AD_STATUSES, InsightsReader

OVERLAP_SECONDS = 300
STATUS = {
    "ACTIVE": EntityStatus.ACTIVE,
    "PAUSED": EntityStatus.PAUSED,
    "ARCHIVED": EntityStatus.ARCHIVED,
    "DELETED": EntityStatus.DELETED,
}
ACCOUNT_STATUS = {
    1: EntityStatus.ACTIVE,
    201: EntityStatus.ACTIVE,
    100: EntityStatus.ARCHIVED,
    101: EntityStatus.DELETED,
    202: EntityStatus.DELETED,
}
LEVEL_STATUSES = {
    "campaign": ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"),
    "adset": (
        "ACTIVE",
        "PAUSED",
        "DELETED",
        "ARCHIVED",
        "IN_PROCESS",
        "WITH_ISSUES",
        "CAMPAIGN_PAUSED",
    ),
    "ad": AD_STATUSES,  # the list ad-level insights filter on too
}
Record = dict[str, Any]
Mapper = Callable[[Mapping[str, Any], Partition], Record]


def act(value: Any) -> str:
    """``act_<id>`` whether Graph sent ``123`` or ``act_123``."""
    return f"act_{str(value).removeprefix('act_')}"


def epoch(text: str | None) -> int | None:
    """Unix seconds of a Graph timestamp (``2026-11-20T10:00:00+0000``)."""
    if not text:
        return None
    try:
        return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp())
    except ValueError:
        return None


def status(raw: Mapping[str, Any]) -> str:
    return str(
        STATUS.get(str(raw.get("status") or raw.get("configured_status")), EntityStatus.PAUSED)
    )


def _ts(text: str | None) -> dt.datetime | None:
    seconds = epoch(text)
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds is not None else None


# --------------------------------------------------------------------------- mappers


def map_account(raw: Mapping[str, Any], partition: Partition) -> Record:
    code = int(raw.get("account_status") or 0)
    return {
        "external_id": act(raw["id"]),
        "name": raw.get("name"),
        "currency": raw.get("currency"),
        "timezone": raw.get("timezone_name"),
        "status": str(ACCOUNT_STATUS.get(code, EntityStatus.PAUSED)),
        "platform_status": str(code),
        "raw": dict(raw),
    }


def _entity(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "external_id": str(raw["id"]),
        "account_id": act(raw.get("account_id") or partition.account_id),
        "name": raw.get("name"),
        "status": status(raw),
        "platform_status": raw.get("effective_status") or raw.get("status"),
        "updated_at": _ts(raw.get("updated_time")),
        "raw": dict(raw),
    }


def map_campaign(raw: Mapping[str, Any], partition: Partition) -> Record:
    currency = partition.params.get("currency")
    return {
        **_entity(raw, partition),
        "objective": raw.get("objective"),
        "daily_budget_micros": minor_to_micros(raw.get("daily_budget"), currency),
        "lifetime_budget_micros": minor_to_micros(raw.get("lifetime_budget"), currency),
    }


def map_ad_group(raw: Mapping[str, Any], partition: Partition) -> Record:
    currency = partition.params.get("currency")
    return {
        **_entity(raw, partition),
        "campaign_id": str(raw["campaign_id"]),
        "daily_budget_micros": minor_to_micros(raw.get("daily_budget"), currency),
        "lifetime_budget_micros": minor_to_micros(raw.get("lifetime_budget"), currency),
        "bid_micros": minor_to_micros(raw.get("bid_amount"), currency),
    }


def map_ad(raw: Mapping[str, Any], partition: Partition) -> Record:
    creative = raw.get("creative") or {}
    return {
        **_entity(raw, partition),
        "campaign_id": str(raw["campaign_id"]),
        "ad_group_id": str(raw["adset_id"]),
        "creative_id": str(creative["id"]) if creative.get("id") else None,
    }


def map_creative(raw: Mapping[str, Any], partition: Partition) -> Record:
    return {
        "external_id": str(raw["id"]),
        "account_id": act(raw.get("account_id") or partition.account_id),
        "name": raw.get("name"),
        "status": status(raw),
        "platform_status": raw.get("status"),
        "title": raw.get("title"),
        "body": raw.get("body"),
        "raw": dict(raw),
    }


def map_lead(raw: Mapping[str, Any], partition: Partition) -> Record:
    """A lead; its answers go in ``fields`` (personal data: never logged)."""
    answers = {
        str(item.get("name")): ", ".join(str(v) for v in item.get("values") or [])
        for item in raw.get("field_data") or []
        if isinstance(item, Mapping)
    }
    return {
        "external_id": str(raw["id"]),
        "account_id": act(partition.account_id) if partition.account_id else None,
        "form_id": raw.get("form_id"),
        "page_id": partition.params.get("page_id"),
        "ad_id": raw.get("ad_id"),
        "ad_group_id": raw.get("adset_id"),
        "campaign_id": raw.get("campaign_id"),
        "created_at": _ts(raw.get("created_time")),
        "is_organic": bool(raw.get("is_organic")),
        "fields": answers,
    }


# --------------------------------------------------------------------------- streams


def _account_partition(name: str, account: Mapping[str, Any] | None, **params: Any) -> Partition:
    if account is None:
        raise ValueError(f"stream {name} reads one ad account at a time")
    account_id = act(account["external_id"])
    return Partition(key=account_id, account_id=account_id, params=params)


@attrs.define(kw_only=True)
class EntityStream:
    """An account-level edge read in large pages, incremental on ``updated_time`` if it can."""

    platform: str = "meta"
    name: str
    entity: EntityKind
    parent: str | None = "ad_accounts"
    edge: str
    fields: str
    mapper: Mapper = attrs.field(eq=False, repr=False)
    level: str | None = None  # campaign / adset / ad: filterable on status and updated_time

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        if self.parent is None:
            return [Partition(key=self.name)]
        currency = (account or {}).get("currency")
        partition = _account_partition(self.name, account, currency=currency)
        mark = state.get(f"watermark:{partition.account_id}")
        if self.level is not None and mark is not None:
            since = int(mark) - OVERLAP_SECONDS
            return [attrs.evolve(partition, params={**partition.params, "updated_since": since})]
        return [partition]

    def _params(self, ctx: PlatformContext, partition: Partition) -> dict[str, Any]:
        params: dict[str, Any] = {
            "fields": self.fields,
            "limit": MetaConfig.from_settings(ctx.settings).page_size,
        }
        if self.level is not None:
            rules: list[dict[str, Any]] = [
                {
                    "field": f"{self.level}.effective_status",
                    "operator": "IN",
                    "value": list(LEVEL_STATUSES[self.level]),
                }
            ]
            since = partition.params.get("updated_since")
            if since is not None:
                rules.append(
                    {
                        "field": f"{self.level}.updated_time",
                        "operator": "GREATER_THAN",
                        "value": int(since),
                    }
                )
            params["filtering"] = json.dumps(rules, separators=(",", ":"))
        return params

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        ids = partition.params.get("ids")
        if ids:
            body = await request_json(
                ctx,
                "GET",
                graph_url(ctx, ""),
                params={"ids": ",".join(map(str, ids)), "fields": self.fields},
            )
            yield Page(records=[self.mapper(item, partition) for item in (body or {}).values()])
            return
        path = self.edge if self.parent is None else f"{partition.account_id}/{self.edge}"
        newest: int | None = None
        async for items in cursor_pages(
            ctx, graph_url(ctx, path), params=self._params(ctx, partition), chunk=CHUNK
        ):
            if self.level is not None:
                stamps = [s for s in (epoch(i.get("updated_time")) for i in items) if s is not None]
                newest = max([*stamps, *([newest] if newest else [])], default=newest)
            yield Page(records=mapped(items, lambda item: self.mapper(item, partition)))
        if self.level is not None and newest is not None:
            previous = partition.params.get("updated_since")
            mark = max(newest, int(previous) + OVERLAP_SECONDS if previous is not None else newest)
            yield Page(records=[], state={f"watermark:{partition.account_id}": mark})


@attrs.define(kw_only=True)
class MetricsStream:
    """Daily insights at ``level`` (``ad`` through report runs, ``account`` directly)."""

    platform: str = "meta"
    name: str
    entity: EntityKind = EntityKind.DAILY_METRIC
    parent: str | None = "ad_accounts"
    level: str

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        config = MetaConfig.from_settings(ctx.settings)
        base = _account_partition(self.name, account)
        today = account_today(account)  # Meta's dates are the ad account's days
        done = state.get(f"metrics_until:{base.account_id}")
        if done:
            lookback = ctx.settings.lookback_days(ctx.platform.lookback_days)
            since = min(
                today - dt.timedelta(days=lookback - 1),
                dt.date.fromisoformat(done) + dt.timedelta(days=1),
            )
        else:
            since = today - dt.timedelta(days=config.history_days - 1)
        out: list[Partition] = []
        start = since
        while start <= today:
            end = min(today, start + dt.timedelta(days=config.days_per_job - 1))
            key = f"{base.account_id}:{self.level}:{start}..{end}"
            params: dict[str, Any] = {"since": start.isoformat(), "until": end.isoformat()}
            inflight = state.get(f"inflight:{key}")
            if inflight:
                params["inflight"] = inflight
            out.append(Partition(key=key, account_id=base.account_id, params=params))
            start = end + dt.timedelta(days=1)
        return out

    def concurrent_partitions(self, ctx: PlatformContext) -> int:
        """Ad level: report runs of one account started and read at once (each partition's
        run id is its own state; ``metrics_until`` is kept in order by the engine)."""
        if self.level != "ad":
            return 1
        return MetaConfig.from_settings(ctx.settings).report_runs_at_once

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        config = MetaConfig.from_settings(ctx.settings)
        reader = InsightsReader(ctx, partition, level=self.level, config=config)
        async for page in reader.pages():
            yield page
        yield Page(
            records=[], state={f"metrics_until:{partition.account_id}": partition.params["until"]}
        )


@attrs.define(kw_only=True)
class LeadsStream:
    """Leads of the forms on the pages an ad account promotes, newer than the watermark."""

    platform: str = "meta"
    name: str = "leads"
    entity: EntityKind = EntityKind.LEAD
    parent: str | None = "ad_accounts"
    fields: str = (
        "id,created_time,ad_id,adset_id,campaign_id,form_id,is_organic,platform,field_data"
    )

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        partition = _account_partition(self.name, account)
        mark = state.get(f"watermark:{partition.account_id}")
        if mark is not None:
            return [attrs.evolve(partition, params={"created_since": int(mark) - OVERLAP_SECONDS})]
        return [partition]

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        if partition.params.get("lead_id"):
            yield Page(records=[await self.fetch(ctx, partition)])
            return
        size = MetaConfig.from_settings(ctx.settings).page_size
        newest: int | None = None
        pages_url = graph_url(ctx, f"{partition.account_id}/promote_pages")
        async for pages in cursor_pages(
            ctx, pages_url, params={"fields": "id,name", "limit": size}
        ):
            # route the pages' leadgen webhooks here, even before their first lead
            yield Page(records=[], routes=tuple(("page", str(p["id"])) for p in pages))
            for page in pages:
                forms_url = graph_url(ctx, f"{page['id']}/leadgen_forms")
                async for forms in cursor_pages(
                    ctx, forms_url, params={"fields": "id,name,status", "limit": size}
                ):
                    yield Page(records=[], routes=tuple(("form", str(f["id"])) for f in forms))
                    for form in forms:
                        params: dict[str, Any] = {"fields": self.fields, "limit": size}
                        since = partition.params.get("created_since")
                        if since is not None:
                            params["filtering"] = json.dumps(
                                [
                                    {
                                        "field": "time_created",
                                        "operator": "GREATER_THAN",
                                        "value": int(since),
                                    }
                                ]
                            )
                        scoped = attrs.evolve(
                            partition, params={**partition.params, "page_id": str(page["id"])}
                        )
                        async for leads in cursor_pages(
                            ctx, graph_url(ctx, f"{form['id']}/leads"), params=params
                        ):
                            stamps = [
                                s
                                for s in (epoch(x.get("created_time")) for x in leads)
                                if s is not None
                            ]
                            newest = max([*stamps, *([newest] if newest else [])], default=newest)
                            lead = functools.partial(map_lead, partition=scoped)
                            yield Page(records=mapped(leads, lead))
        if newest is not None:
            yield Page(records=[], state={f"watermark:{partition.account_id}": newest})

    async def fetch(self, ctx: PlatformContext, partition: Partition) -> Record:
        """One lead by id (a ``leadgen`` webhook), with the ad account of its ad."""
        raw = await request_json(
            ctx,
            "GET",
            graph_url(ctx, str(partition.params["lead_id"])),
            params={"fields": self.fields},
        )
        account = partition.account_id
        if raw.get("ad_id") and not account:
            ad = await request_json(
                ctx, "GET", graph_url(ctx, str(raw["ad_id"])), params={"fields": "account_id"}
            )
            account = act(ad["account_id"])
        return map_lead(raw, attrs.evolve(partition, account_id=account))


def streams() -> list[Stream]:
    """Every stream of Meta."""
    return [
        EntityStream(
            name="ad_accounts",
            entity=EntityKind.AD_ACCOUNT,
            parent=None,
            edge="me/adaccounts",
            fields="id,account_id,name,currency,timezone_name,account_status,amount_spent",
            mapper=map_account,
        ),
        EntityStream(
            name="campaigns",
            entity=EntityKind.CAMPAIGN,
            edge="campaigns",
            level="campaign",
            fields="id,account_id,name,status,configured_status,effective_status,objective,"
            "daily_budget,lifetime_budget,buying_type,created_time,updated_time,start_time,stop_time",
            mapper=map_campaign,
        ),
        EntityStream(
            name="ad_groups",
            entity=EntityKind.AD_GROUP,
            edge="adsets",
            level="adset",
            fields="id,account_id,campaign_id,name,status,configured_status,effective_status,"
            "daily_budget,lifetime_budget,bid_amount,optimization_goal,billing_event,"
            "created_time,updated_time,start_time,end_time",
            mapper=map_ad_group,
        ),
        EntityStream(
            name="ads",
            entity=EntityKind.AD,
            edge="ads",
            level="ad",
            fields="id,account_id,campaign_id,adset_id,name,status,configured_status,"
            "effective_status,creative{id},created_time,updated_time",
            mapper=map_ad,
        ),
        EntityStream(
            name="creatives",
            entity=EntityKind.CREATIVE,
            edge="adcreatives",
            fields="id,account_id,name,title,body,object_type,status,thumbnail_url",
            mapper=map_creative,
        ),
        MetricsStream(name="daily_metrics_ad", level="ad"),
        MetricsStream(name="daily_metrics_account", level="account"),
        LeadsStream(),
    ]
