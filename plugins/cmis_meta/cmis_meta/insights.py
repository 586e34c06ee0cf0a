"""Daily insights: async report runs for ad level, synchronous reads for account level.

Ad level goes through a report run (``POST /act_<id>/insights`` -> ``report_run_id``,
poll ``GET /<run>`` until ``async_status`` is ``Job Completed``, then page
``GET /<run>/insights``). The run id is checkpointed (``Page.state``
``inflight:<partition key>``) before the first poll, so an interrupted sync resumes that
run instead of starting another; a run that outlives ``CMIS_META_REPORT_TIMEOUT_SECONDS``
raises :class:`~cmis_core.errors.Transient` and is resumed next time. "Too much data"
(``100/1487534``, on the request or as the failed run's error) splits the work: the date
range in halves, then, for a single day, the account's campaigns in halves.

Deleted and archived ads are asked for explicitly (``ad.effective_status IN [...]``):
Meta leaves them out otherwise, and a deleted ad keeps accruing inside the look-back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from cmis_core import Page, Partition, PlatformContext
from cmis_core.errors import Fatal, PlatformError, SplitRequired, Transient
from cmis_core.sync.paging import CHUNK, cursor_pages, mapped, request_json
from cmis_meta.client import NAME, graph_url, to_micros
from cmis_meta.config import MetaConfig

# Every effective_status an ad can have, for ``ad.effective_status IN [...]``; the ``ads``
# stream (cmis_meta.streams.LEVEL_STATUSES) filters on the same list.
AD_STATUSES = (
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "ARCHIVED",
    "IN_PROCESS",
    "WITH_ISSUES",
    "CAMPAIGN_PAUSED",
    "ADSET_PAUSED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
)
FIELDS = {
    "ad": "account_id,account_currency,campaign_id,adset_id,ad_id,date_start,date_stop,"
    "impressions,clicks,spend,actions,action_values",
    "account": "account_id,account_currency,date_start,date_stop,impressions,clicks,spend,"
    "actions,action_values",
}
DONE, FAILED = "Job Completed", ("Job Failed", "Job Skipped")
Record = dict[str, Any]


@attrs.frozen
class Piece:
    """A slice of a partition's work: a date range and, after a split, some campaigns."""

    since: dt.date
    until: dt.date
    campaigns: tuple[str, ...] | None = None

    def halves(self) -> list[Piece] | None:
        if self.until > self.since:
            middle = self.since + (self.until - self.since) // 2
            return [
                Piece(self.since, middle, self.campaigns),
                Piece(middle + dt.timedelta(days=1), self.until, self.campaigns),
            ]
        if self.campaigns is not None and len(self.campaigns) > 1:
            half = len(self.campaigns) // 2
            return [
                Piece(self.since, self.until, self.campaigns[:half]),
                Piece(self.since, self.until, self.campaigns[half:]),
            ]
        return None


def _sum(items: Any, types: frozenset[str]) -> Decimal:
    total = Decimal(0)
    for item in items or []:
        if isinstance(item, Mapping) and item.get("action_type") in types:
            total += Decimal(str(item.get("value") or "0"))
    return total


def map_metric(row: Mapping[str, Any], *, level: str, config: MetaConfig) -> Record:
    """A Graph insights row -> a ``daily_metric`` record (money in integer micros)."""
    types = frozenset(config.conversion_action_types)
    account = f"act_{str(row['account_id']).removeprefix('act_')}"
    value = _sum(row.get("action_values"), types)
    record: Record = {
        "account_id": account,
        "level": level,
        "external_id": str(row["ad_id"]) if level == "ad" else account,
        "date": dt.date.fromisoformat(str(row["date_start"])),
        "currency": row.get("account_currency"),
        "impressions": int(row.get("impressions") or 0),
        "clicks": int(row.get("clicks") or 0),
        "spend_micros": to_micros(row.get("spend")) or 0,
        "conversions": _sum(row.get("actions"), types),
        "conversions_value_micros": to_micros(value) or 0,
        "attribution_setting": config.attribution_setting,
    }
    if level == "ad":
        record["campaign_id"] = str(row.get("campaign_id") or "") or None
        record["ad_group_id"] = str(row.get("adset_id") or "") or None
    return record


def _params(level: str, piece: Piece, config: MetaConfig) -> dict[str, str]:
    params = {
        "level": level,
        "fields": FIELDS[level],
        "time_range": json.dumps(
            {"since": piece.since.isoformat(), "until": piece.until.isoformat()}
        ),
        "time_increment": "1",
        "action_attribution_windows": config.windows_json,
    }
    if level == "ad":
        rules: list[dict[str, Any]] = [
            {"field": "ad.effective_status", "operator": "IN", "value": list(AD_STATUSES)}
        ]
        if piece.campaigns is not None:
            rules.append({"field": "campaign.id", "operator": "IN", "value": list(piece.campaigns)})
        params["filtering"] = json.dumps(rules, separators=(",", ":"))
    return params


class InsightsReader:
    """Reads one daily-metrics partition (``account_id``, ``since``, ``until``)."""

    def __init__(
        self,
        ctx: PlatformContext,
        partition: Partition,
        *,
        level: str,
        config: MetaConfig,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.ctx = ctx
        self.partition = partition
        self.level = level
        self.config = config
        self.sleep = sleep
        self.account = str(partition.account_id)
        self.inflight_key = f"inflight:{partition.key}"

    async def pages(self) -> AsyncIterator[Page]:
        """Every page of the partition, splitting on "too much data"; state cleared at the end."""
        params = self.partition.params
        pending = [
            Piece(dt.date.fromisoformat(params["since"]), dt.date.fromisoformat(params["until"]))
        ]
        resume: Mapping[str, Any] | None = params.get("inflight")
        while pending:
            piece = pending.pop(0)
            try:
                if self.level == "ad":
                    async for page in self._report(piece, resume):
                        yield page
                else:
                    async for page in self._direct(piece):
                        yield page
            except SplitRequired:
                smaller = piece.halves()
                if smaller is None and piece.campaigns is None and self.level == "ad":
                    campaigns = await self._campaign_ids()
                    smaller = (
                        Piece(piece.since, piece.until, campaigns).halves()
                        if len(campaigns) > 1
                        else None
                    )
                if smaller is None:
                    raise
                self.ctx.log.info("meta.insights_split", account=self.account, pieces=len(smaller))
                pending[:0] = smaller
            resume = None
        yield Page(records=[], state={self.inflight_key: None})

    def _metric(self, row: Mapping[str, Any]) -> Record:
        return map_metric(row, level=self.level, config=self.config)

    async def _direct(self, piece: Piece) -> AsyncIterator[Page]:
        params = {
            **_params(self.level, piece, self.config),
            "limit": self.config.insights_page_size,
        }
        url = graph_url(self.ctx, f"{self.account}/insights")
        async for items in cursor_pages(self.ctx, url, params=params, chunk=CHUNK):
            yield Page(records=mapped(items, self._metric))

    async def _report(self, piece: Piece, resume: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        run_id = await self._resumable(piece, resume)
        if run_id is None:
            body = await request_json(
                self.ctx,
                "POST",
                graph_url(self.ctx, f"{self.account}/insights"),
                params=_params(self.level, piece, self.config),
            )
            run_id = str((body or {}).get("report_run_id") or "")
            if not run_id:
                raise Fatal("Meta started no report run (no report_run_id)", platform=NAME)
            yield Page(
                records=[],
                state={
                    self.inflight_key: {
                        "report_run_id": run_id,
                        "since": piece.since.isoformat(),
                        "until": piece.until.isoformat(),
                        "campaigns": list(piece.campaigns) if piece.campaigns else None,
                    }
                },
            )
        await self._wait(run_id)
        url = graph_url(self.ctx, f"{run_id}/insights")
        async for items in cursor_pages(
            self.ctx, url, params={"limit": self.config.insights_page_size}, chunk=CHUNK
        ):
            yield Page(records=mapped(items, self._metric))

    async def _resumable(self, piece: Piece, resume: Mapping[str, Any] | None) -> str | None:
        """The checkpointed run for this piece if Meta still has it and it has not failed."""
        if not resume or not resume.get("report_run_id"):
            return None
        same = (
            resume.get("since") == piece.since.isoformat()
            and resume.get("until") == piece.until.isoformat()
            and (resume.get("campaigns") or None)
            == (list(piece.campaigns) if piece.campaigns else None)
        )
        if not same:
            return None
        run_id = str(resume["report_run_id"])
        try:
            status = await self._status(run_id)
        except (Fatal, PlatformError) as exc:
            if isinstance(exc, Transient):
                raise
            self.ctx.log.info("meta.report_run_gone", account=self.account)
            return None
        if status.get("async_status") in FAILED:
            return None
        self.ctx.log.info("meta.report_run_resumed", account=self.account)
        return run_id

    async def _status(self, run_id: str) -> Mapping[str, Any]:
        body = await request_json(
            self.ctx,
            "GET",
            graph_url(self.ctx, run_id),
            params={
                "fields": "id,async_status,async_percent_completion,"
                "error_code,error_subcode,error_message"
            },
        )
        return body if isinstance(body, Mapping) else {}

    async def _wait(self, run_id: str) -> None:
        """Poll the run until it completes; its failure is classified like any Graph error."""
        deadline = time.monotonic() + self.config.report_timeout_seconds
        delay = self.config.report_poll_seconds
        while True:
            status = await self._status(run_id)
            state = status.get("async_status")
            if state == DONE and int(status.get("async_percent_completion") or 100) >= 100:
                return
            if state in FAILED:
                code, sub = status.get("error_code"), status.get("error_subcode")
                message = str(status.get("error_message") or "")
                if (code, sub) == (100, 1487534) or "reduce the amount of data" in message:
                    raise SplitRequired(
                        "Meta: the report run asked for too much data", platform=NAME, code=100
                    )
                raise Transient(
                    f"Meta: the report run ended as {state!r}", platform=NAME, code=code
                )
            if time.monotonic() >= deadline:
                raise Transient(
                    f"Meta: the report run is still {state!r} after "
                    f"{self.config.report_timeout_seconds:.0f}s; it is resumed next sync",
                    platform=NAME,
                )
            await self.sleep(delay)
            delay = min(delay * 1.5, 30.0) if delay else 0

    async def _campaign_ids(self) -> tuple[str, ...]:
        rules = [
            {
                "field": "campaign.effective_status",
                "operator": "IN",
                "value": ["ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"],
            }
        ]
        url = graph_url(self.ctx, f"{self.account}/campaigns")
        params = {
            "fields": "id",
            "limit": 5000,
            "filtering": json.dumps(rules, separators=(",", ":")),
        }
        ids: list[str] = []
        async for items in cursor_pages(self.ctx, url, params=params):
            ids.extend(str(i["id"]) for i in items)
        return tuple(ids)
