"""Processing the inbox: parse, route, fetch, apply, mark processed: once per delivery.

:class:`InboxProcessor` claims due rows in batches (see :mod:`cmis_core.webhooks.inbox`
for claiming and fencing), then for each delivery:

1. parses it with the platform's verifier (a body the plugin refuses is parked as
   ``failed`` at once: retrying cannot fix it);
2. routes each ``lead`` and ``entity`` event to its organisation and integration by page,
   ad account, form or customer id (``Store.route``). An event nobody claims yet parks the
   delivery as ``unroutable``: retried every ``unroutable_retry`` seconds and as soon as a
   sync calls :func:`~cmis_core.webhooks.inbox.requeue_unroutable`; never dropped;
3. finds the lead records of ``lead`` events (``expand``, the payload, or a targeted read:
   see :class:`~cmis_core.contract.WebhookExpander`), with a context from the injected
   :class:`~cmis_core.webhooks.contexts.ContextProvider`; no transaction is open meanwhile;
4. applies, in one transaction per organisation: leads upserted, integrations of
   ``entity`` events queued for a sync (``integrations.queued_at``), and the row marked
   ``processed`` only if it still carries its claim; otherwise everything rolls back;
5. after the commit, tells the ``cmis_on_webhook_processed`` observers.

A failure (the platform down, a plugin error) leaves the row ``received`` with a back-off
(``backoff_base * 2**(attempts-1)``, capped; a ``RateLimited`` wait is honoured) and the
error (no secrets, no lead values); after ``max_attempts`` it is parked ``failed``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import structlog
from sqlalchemy import Connection, func, select, update

from cmis_core.contract import Partition, WebhookExpander, WebhookVerifier
from cmis_core.errors import CmisError, RateLimited, WebhookRejected
from cmis_core.factory import Registry
from cmis_core.redaction import neutralise, redact_text
from cmis_core.settings import Settings
from cmis_core.store import Store, upsert
from cmis_core.store.records import RouteTarget
from cmis_core.store.tables import integrations, leads, organizations
from cmis_core.types import WebhookEvent, WebhookProcessedEvent, utcnow
from cmis_core.webhooks import inbox
from cmis_core.webhooks.contexts import ContextProvider, UnauthenticatedContexts
from cmis_core.webhooks.inbox import ClaimedRow
from cmis_core.webhooks.leads import lead_row

log = structlog.get_logger(__name__)

ROUTED_KINDS = ("lead", "entity")
LEAD_KEY = ("platform", "external_id")


class Permanent(Exception):
    """A failure that retrying cannot fix: the row is parked ``failed`` at once."""


class _LostClaim(Exception):
    """The row no longer carries this processor's claim: someone else has it."""


@attrs.frozen(kw_only=True)
class ProcessOptions:
    """How a processor claims, retries and waits."""

    batch_size: int = attrs.field(default=200, validator=attrs.validators.ge(1))
    lease_seconds: float = 300.0
    max_attempts: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    backoff_base: float = 30.0
    backoff_max: float = 3600.0
    unroutable_retry: float = 900.0
    concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    platform: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ProcessOptions:
        """Options with ``CMIS_WEBHOOK_MAX_ATTEMPTS`` (and ``overrides``)."""
        return cls(**{"max_attempts": settings.webhook_max_attempts, **overrides})

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after failed attempt number ``attempts`` (with 10 % jitter)."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return float(delay * (1 + random.random() / 10))


@attrs.define
class ProcessReport:
    """What one run did, in rows (``leads``: lead rows written)."""

    claimed: int = 0
    processed: int = 0
    unroutable: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0
    leads: int = 0

    def add(self, other: ProcessReport) -> None:
        for field in attrs.fields(ProcessReport):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


@attrs.define
class _Work:
    """What one delivery does in one organisation."""

    target: RouteTarget
    lead_rows: list[dict[str, Any]] = attrs.field(factory=list)
    queue_sync: bool = False
    events: list[tuple[int, WebhookEvent]] = attrs.field(factory=list)


@attrs.define
class _Plan:
    """A delivery parsed, routed and expanded: ready to apply."""

    row: ClaimedRow
    works: dict[int, _Work] = attrs.field(factory=dict)  # by org id
    unroutable: list[str] = attrs.field(factory=list)


def describe(exc: BaseException) -> str:
    """A one-line error for the inbox row: our messages are free of secrets; others give
    their type only (a library's message may quote data)."""
    if isinstance(exc, CmisError | Permanent):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = type(exc).__name__
    return neutralise(redact_text(text))[: inbox.MAX_ERROR]


class InboxProcessor:
    """Processes due inbox rows; safe to run in several processes at once."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        settings: Settings,
        *,
        contexts: ContextProvider | None = None,
        options: ProcessOptions | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.contexts: ContextProvider = contexts or UnauthenticatedContexts(registry, settings)
        self.options = options or ProcessOptions.from_settings(settings)
        self.clock = clock
        self._slugs: dict[int, str] = {}

    # ------------------------------------------------------------------ running
    async def run(self, *, max_batches: int | None = None) -> ProcessReport:
        """Process batches until nothing is due (or ``max_batches``); the total report."""
        total = ProcessReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            report = await self.run_once()
            batches += 1
            total.add(report)
            if report.claimed == 0:
                break
        return total

    async def run_once(self) -> ProcessReport:
        """Claim one batch and process it."""
        now = self.clock()
        lease = now + dt.timedelta(seconds=self.options.lease_seconds)
        rows = await asyncio.to_thread(self._claim, now, lease)
        report = ProcessReport(claimed=len(rows))
        if not rows:
            return report
        routes: dict[tuple[str, str, str], RouteTarget | None] = {}
        limit = asyncio.Semaphore(self.options.concurrency)

        async def prepare(row: ClaimedRow) -> _Plan | BaseException:
            async with limit:
                try:
                    return await self._prepare(row, routes)
                except Exception as exc:
                    return exc

        outcomes = await asyncio.gather(*(prepare(row) for row in rows))
        plans = [o for o in outcomes if isinstance(o, _Plan)]
        failures: list[tuple[ClaimedRow, BaseException]] = [
            (row, o) for row, o in zip(rows, outcomes, strict=True) if isinstance(o, BaseException)
        ]
        applied = await asyncio.to_thread(self._apply_all, plans, lease, report, failures)
        if failures:
            await asyncio.to_thread(self._fail_all, failures, report)
        for plan in applied:
            self._notify(plan)
        if report.claimed:
            log.info("webhooks.processed_batch", **report.to_json())
        return report

    # ------------------------------------------------------------------ claim
    def _claim(self, now: dt.datetime, lease: dt.datetime) -> list[ClaimedRow]:
        with self.store.system() as conn:
            return inbox.claim(
                conn,
                now=now,
                lease=lease,
                limit=self.options.batch_size,
                platform=self.options.platform,
            )

    # ------------------------------------------------------------------ prepare
    async def _prepare(
        self, row: ClaimedRow, routes: dict[tuple[str, str, str], RouteTarget | None]
    ) -> _Plan:
        if row.body is None:
            raise Permanent("the delivery's body was purged before it was processed")
        verifier = self.registry.webhook_verifier(row.platform)
        try:
            events = verifier.parse(row.body)
        except WebhookRejected as exc:
            raise Permanent(
                f"the {row.platform} plugin refuses the delivery: {exc.reason}"
            ) from None
        plan = _Plan(row=row)
        for index, event in enumerate(events):
            key = (event.platform, event.route_kind, event.route_id)
            if key not in routes:
                routes[key] = await asyncio.to_thread(self.store.route, *key)
            target = routes[key]
            if target is None:
                if event.kind in ROUTED_KINDS:
                    plan.unroutable.append(f"{event.route_kind} {event.route_id}")
                continue
            work = plan.works.setdefault(target.org_id, _Work(target=target))
            work.events.append((index, event))
            if event.kind == "lead":
                records = await self._lead_records(verifier, event, target)
                work.lead_rows.extend(lead_row(r, event) for r in records)
            elif event.kind == "entity":
                work.queue_sync = True
        return plan

    async def _lead_records(
        self, verifier: WebhookVerifier, event: WebhookEvent, target: RouteTarget
    ) -> list[Mapping[str, Any]]:
        """The lead records ``event`` stands for (see :class:`WebhookExpander`)."""
        if isinstance(verifier, WebhookExpander):
            ctx = await self.contexts(event.platform, target)
            return list(await verifier.expand(ctx, event))
        carried = event.payload.get("lead")
        if isinstance(carried, Mapping):
            return [carried]
        stream_name = event.payload.get("sync_stream")
        if isinstance(stream_name, str):
            streams = self.registry.streams_of(event.platform)
            if stream_name not in streams:
                raise Permanent(f"the {event.platform} plugin has no stream {stream_name!r}")
            ctx = await self.contexts(event.platform, target)
            params = event.payload.get("sync_params")
            partition = Partition(
                key=f"webhook:{event.external_id}",
                params=dict(params) if isinstance(params, Mapping) else {},
            )
            records: list[Mapping[str, Any]] = []
            async for page in streams[stream_name].read(ctx, partition):
                records.extend(page.records)
            return records
        raise Permanent(
            f"the {event.platform} plugin gives no way to get lead {event.external_id} "
            "(no expand, no lead in the payload, no sync_stream)"
        )

    # ------------------------------------------------------------------ apply
    def _apply_all(
        self,
        plans: Sequence[_Plan],
        lease: dt.datetime,
        report: ProcessReport,
        failures: list[tuple[ClaimedRow, BaseException]],
    ) -> list[_Plan]:
        """Apply every plan; the plans whose effects committed (for the observers).

        Plans that fail to apply are added to ``failures``."""
        now = self.clock()
        applied: list[_Plan] = []
        groups: dict[tuple[int, int], list[_Plan]] = {}
        nothing: list[_Plan] = []
        for plan in plans:
            if plan.unroutable or len(plan.works) > 1:
                if self._apply_one(plan, lease, now, report, failures):
                    applied.append(plan)
            elif not plan.works:
                nothing.append(plan)
            else:
                target = next(iter(plan.works.values())).target
                groups.setdefault((target.org_id, target.integration_id), []).append(plan)
        if nothing:
            with self.store.system() as conn:
                done = inbox.finish(conn, [p.row.id for p in nothing], lease, now=now)
            report.processed += done
            report.lost += len(nothing) - done
        for (org_id, _), group in groups.items():
            try:
                report.leads += self._apply_group(org_id, group, lease, now)
            except Exception:  # a lost claim or one bad row: one at a time to keep the rest
                for plan in group:
                    if self._apply_one(plan, lease, now, report, failures):
                        applied.append(plan)
                continue
            report.processed += len(group)
            applied.extend(group)
        return applied

    def _apply_group(
        self, org_id: int, group: Sequence[_Plan], lease: dt.datetime, now: dt.datetime
    ) -> int:
        target = next(iter(group[0].works.values())).target
        works = [p.works[org_id] for p in group]
        with self.store.org(org_id) as conn:
            written = self._write(conn, works, now)
            ids = [p.row.id for p in group]
            done = inbox.finish(
                conn, ids, lease, now=now, org_id=org_id, integration_id=target.integration_id
            )
            if done != len(ids):
                raise _LostClaim()
        return written

    def _apply_one(
        self,
        plan: _Plan,
        lease: dt.datetime,
        now: dt.datetime,
        report: ProcessReport,
        failures: list[tuple[ClaimedRow, BaseException]],
    ) -> bool:
        """Apply a delivery on its own: one transaction per organisation it touches."""
        row = plan.row
        orgs = list(plan.works.items())
        try:
            for position, (org_id, work) in enumerate(orgs):
                last = position == len(orgs) - 1 and not plan.unroutable
                with self.store.org(org_id) as conn:
                    if not last and not inbox.still_held(conn, row.id, lease):
                        raise _LostClaim()
                    report.leads += self._write(conn, [work], now)
                    if last:
                        done = inbox.finish(
                            conn,
                            [row.id],
                            lease,
                            now=now,
                            org_id=org_id,
                            integration_id=work.target.integration_id,
                        )
                        if done != 1:
                            raise _LostClaim()
            if plan.unroutable:
                with self.store.system() as conn:
                    retry_at = now + dt.timedelta(seconds=self.options.unroutable_retry)
                    missing = ", ".join(sorted(set(plan.unroutable)))
                    if not inbox.park(
                        conn,
                        row.id,
                        lease,
                        status=inbox.UNROUTABLE,
                        error=f"no organisation routes {missing} yet",
                        next_attempt_at=retry_at,
                        uncount=True,
                    ):
                        raise _LostClaim()
                report.unroutable += 1
                log.info("webhooks.unroutable", row=row.id, platform=row.platform, missing=missing)
            else:
                report.processed += 1
        except _LostClaim:
            report.lost += 1
            log.warning("webhooks.claim_lost", row=row.id, platform=row.platform)
            return False
        except Exception as exc:
            failures.append((row, exc))
            return False
        return bool(plan.works)

    def _write(self, conn: Connection, works: Sequence[_Work], now: dt.datetime) -> int:
        """Apply the effects of ``works`` (one organisation) in ``conn``; lead rows written."""
        rows = [r for w in works for r in w.lead_rows]
        written = 0
        if rows:
            result = upsert(conn, leads, rows, LEAD_KEY)
            written = result.inserted + result.updated
        queued = sorted({w.target.integration_id for w in works if w.queue_sync})
        if queued:
            i = integrations.c
            conn.execute(
                update(integrations)
                .where(i.org_id == works[0].target.org_id, i.id.in_(queued))
                .values(queued_at=func.coalesce(i.queued_at, now))
            )
        return written

    # ------------------------------------------------------------------ failures
    def _fail_all(
        self, failures: Sequence[tuple[ClaimedRow, BaseException]], report: ProcessReport
    ) -> None:
        now = self.clock()
        with self.store.system() as conn:
            for row, exc in failures:
                permanent = isinstance(exc, Permanent)
                exhausted = row.attempts >= self.options.max_attempts
                error = describe(exc)
                if permanent or exhausted:
                    status, retry_at = inbox.FAILED, None
                else:
                    wait = self.options.backoff(row.attempts)
                    if isinstance(exc, RateLimited) and exc.retry_after:
                        wait = max(wait, float(exc.retry_after))
                    status, retry_at = inbox.RECEIVED, now + dt.timedelta(seconds=wait)
                if not inbox.park(
                    conn, row.id, row.lease, status=status, error=error, next_attempt_at=retry_at
                ):
                    report.lost += 1
                    continue
                if status == inbox.FAILED:
                    report.failed += 1
                else:
                    report.retrying += 1
                log.warning(
                    "webhooks.process_failed",
                    row=row.id,
                    platform=row.platform,
                    attempts=row.attempts,
                    status=status,
                    error=error,
                )

    # ------------------------------------------------------------------ observers
    def _slug(self, org_id: int) -> str:
        if org_id not in self._slugs:
            with self.store.system(write=False) as conn:
                slug = conn.execute(
                    select(organizations.c.slug).where(organizations.c.id == org_id)
                ).scalar_one_or_none()
            self._slugs[org_id] = str(slug or org_id)
        return self._slugs[org_id]

    def _notify(self, plan: _Plan) -> None:
        hook = self.registry.pm.hook.cmis_on_webhook_processed
        if not hook.get_hookimpls():
            return
        row = plan.row
        for org_id, work in plan.works.items():
            for index, event in work.events:
                self.registry.webhook_processed(
                    WebhookProcessedEvent(
                        event_id=f"{row.platform}:{row.dedupe_key}:{index}",
                        org=self._slug(org_id),
                        platform=event.platform,
                        delivery_id=str(row.id),
                        kind=event.kind,
                        external_id=event.external_id,
                    )
                )


async def process_inbox(
    store: Store,
    registry: Registry,
    settings: Settings,
    *,
    contexts: ContextProvider | None = None,
    options: ProcessOptions | None = None,
) -> ProcessReport:
    """Process everything due now, then purge bodies past the retention: for the runner."""
    processor = InboxProcessor(store, registry, settings, contexts=contexts, options=options)
    report = await processor.run()
    await asyncio.to_thread(purge_processed, store, settings)
    return report


def purge_processed(store: Store, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """Drop bodies of rows processed more than ``CMIS_INBOX_RETENTION_DAYS`` ago."""
    before = (now or utcnow()) - dt.timedelta(days=settings.inbox_retention_days)
    with store.system() as conn:
        purged = inbox.purge(conn, before=before)
    if purged:
        log.info("webhooks.purged", rows=purged, days=settings.inbox_retention_days)
    return purged
