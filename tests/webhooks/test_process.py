"""Processing the inbox: leads stored, entities queued, unroutable parked, failures retried,
exactly once per delivery with two processors at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import attrs
import httpx2
import pytest
from sqlalchemy import func, insert, select, update
from structlog.testing import capture_logs

from cmis_core.auth.oauth2 import BearerAuth
from cmis_core.contract import Page, Partition
from cmis_core.factory import Registry
from cmis_core.settings import Settings
from cmis_core.store import RouteTarget, Store, open_store
from cmis_core.store.tables import integrations, leads, webhook_events
from cmis_core.testing.conformance import KitHarness
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.serve import serve_sandbox
from cmis_core.types import EntityKind, PlatformContext, WebhookEvent
from cmis_core.webhooks import inbox
from cmis_core.webhooks.contexts import context_for
from cmis_core.webhooks.process import InboxProcessor, ProcessOptions, purge_processed
from tests.webhooks.support import (
    FetchingWebhooks,
    LeadWebhooks,
    ProcessedCounter,
    body_of,
    connect_route,
    lead_of,
    registry_with,
)

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def put(store: Store, *bodies: bytes, platform: str = "example") -> list[int]:
    """Inbox rows as the receive path writes them."""
    with store.system() as conn:
        return [
            conn.execute(
                insert(webhook_events)
                .values(
                    platform=platform,
                    dedupe_key=f"id:{json.loads(body)['id']}",
                    received_at=NOW,
                    headers={},
                    body=body,
                )
                .returning(webhook_events.c.id)
            ).scalar_one()
            for body in bodies
        ]


def row(store: Store, row_id: int) -> Any:
    with store.system(write=False) as conn:
        return conn.execute(select(webhook_events).where(webhook_events.c.id == row_id)).one()


def stored_leads(store: Store, org_id: int) -> list[Any]:
    with store.org(org_id, write=False) as conn:
        return list(conn.execute(select(leads).order_by(leads.c.external_id)))


def processor(
    store: Store, registry: Registry, settings: Settings, **options: Any
) -> InboxProcessor:
    clock = options.pop("clock", lambda: NOW)
    return InboxProcessor(store, registry, settings, options=ProcessOptions(**options), clock=clock)


async def test_a_carried_lead_is_stored_routed_and_observed_once(
    store: Store, registry: Registry, settings: Settings, counter: ProcessedCounter
) -> None:
    target = connect_route(store, "acme")
    (row_id,) = put(store, body_of(1, lead=lead_of(1)))
    report = await processor(store, registry, settings).run()
    assert (report.claimed, report.processed, report.leads) == (1, 1, 1)
    done = row(store, row_id)
    assert (done.status, done.org_id, done.integration_id) == (
        "processed",
        target.org_id,
        target.integration_id,
    )
    assert done.processed_at == NOW and done.error is None
    (lead,) = stored_leads(store, target.org_id)
    assert (lead.platform, lead.external_id, lead.form_id) == ("example", "lead_1", "form_1")
    assert lead.fields == {"email": "person1@example.org", "full_name": "Person 1"}
    assert lead.created_time == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert [(e.org, e.kind, e.external_id, e.delivery_id) for e in counter.events] == [
        ("acme", "lead", "lead_1", str(row_id))
    ]
    again = await processor(store, registry, settings).run()
    assert again.claimed == 0
    assert len(counter.events) == 1


async def test_an_entity_event_queues_a_sync_of_its_integration(
    store: Store, registry: Registry, settings: Settings
) -> None:
    target = connect_route(store, "acme")
    (row_id,) = put(store, body_of(2, kind="campaign.updated"))
    report = await processor(store, registry, settings).run()
    assert report.processed == 1
    with store.org(target.org_id, write=False) as conn:
        queued = conn.execute(
            select(integrations.c.queued_at).where(integrations.c.id == target.integration_id)
        ).scalar_one()
    assert queued == NOW
    assert row(store, row_id).status == "processed"


async def test_an_event_nobody_routes_waits_as_unroutable_until_a_sync_adds_the_route(
    store: Store, registry: Registry, settings: Settings, counter: ProcessedCounter
) -> None:
    (row_id,) = put(store, body_of(3, account="act_new", lead=lead_of(3)))
    report = await processor(store, registry, settings).run()
    assert (report.unroutable, report.processed) == (1, 0)
    parked = row(store, row_id)
    assert parked.status == "unroutable"
    assert parked.attempts == 0  # waiting for a route is not a failed attempt
    assert "ad_account act_new" in parked.error
    assert parked.next_attempt_at > NOW
    assert (await processor(store, registry, settings).run()).claimed == 0  # not due yet

    target = connect_route(store, "acme", external_id="act_new")  # the next sync finds it
    with store.system() as conn:
        assert inbox.requeue_unroutable(conn, platform="example") == 1
    report = await processor(store, registry, settings).run()
    assert report.processed == 1
    assert [lead.external_id for lead in stored_leads(store, target.org_id)] == ["lead_3"]
    assert len(counter.events) == 1


async def test_a_failing_event_backs_off_then_is_parked_failed_and_can_be_retried(
    store: Store, settings: Settings
) -> None:
    registry = registry_with(settings, FetchingWebhooks())  # needs tokens: none configured
    connect_route(store, "acme")
    (row_id,) = put(store, body_of(4))
    clock = [NOW]
    run = processor(store, registry, settings, max_attempts=2, clock=lambda: clock[0])
    first = await run.run()
    assert (first.retrying, first.failed) == (1, 0)
    waiting = row(store, row_id)
    assert (waiting.status, waiting.attempts) == ("received", 1)
    assert waiting.next_attempt_at >= NOW + dt.timedelta(seconds=30)
    assert "Transient" in waiting.error and "token provider" in waiting.error
    assert (await run.run()).claimed == 0  # backing off

    clock[0] = NOW + dt.timedelta(hours=1)
    second = await run.run()
    assert second.failed == 1
    failed = row(store, row_id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 2, None)
    clock[0] = NOW + dt.timedelta(days=1)
    assert (await run.run()).claimed == 0  # parked: never picked up again by itself

    with store.system() as conn:
        again = inbox.retry(conn, row_id)
        assert [r.id for r in inbox.list_rows(conn, statuses=["failed"])] == []
    assert (again.status, again.attempts, again.error) == ("received", 0, None)
    assert (await run.run()).claimed == 1


async def test_a_body_the_plugin_refuses_is_failed_at_once(
    store: Store, registry: Registry, settings: Settings
) -> None:
    with store.system() as conn:
        row_id = conn.execute(
            insert(webhook_events)
            .values(platform="example", dedupe_key="x", received_at=NOW, headers={}, body=b"{}")
            .returning(webhook_events.c.id)
        ).scalar_one()
    report = await processor(store, registry, settings).run()
    assert report.failed == 1
    assert row(store, row_id).status == "failed"
    assert "refuses the delivery" in row(store, row_id).error


class _Kit(KitHarness):
    platform = "example"


async def test_expand_fetches_with_the_routed_integrations_token(
    store: Store, settings: Settings
) -> None:
    """The injected provider gives a client authorised for (org, integration)."""
    registry = registry_with(settings, FetchingWebhooks())
    target = connect_route(store, "acme")
    (row_id,) = put(store, body_of(5))
    with serve_sandbox(registry.sandbox("example")) as sandbox:
        sandbox_settings = Settings.from_env({**settings.environ, **sandbox.env})
        kit = _Kit()
        async with httpx2.AsyncClient() as plain:
            tokens = await kit.connect(
                registry, context_for(registry, sandbox_settings, "example", plain)
            )
        asked: list[tuple[str, RouteTarget]] = []
        async with httpx2.AsyncClient(auth=BearerAuth(tokens.access_token)) as authed:

            async def contexts(platform: str, for_target: RouteTarget) -> PlatformContext:
                asked.append((platform, for_target))
                return context_for(registry, sandbox_settings, platform, authed)

            run = InboxProcessor(store, registry, sandbox_settings, contexts=contexts)
            report = await run.run()
    assert report.processed == 1, row(store, row_id).error
    assert asked == [("example", target)]
    (lead,) = stored_leads(store, target.org_id)
    assert lead.external_id == "lead_5"
    assert lead.fields["owner"]  # the sandbox user behind the token
    assert lead.raw == {"via": "api"}


@attrs.define
class TargetedLeads:
    """A stream read for one lead by webhook (as Meta's ``leads`` with ``lead_id``)."""

    platform: str = "example"
    name: str = "leads"
    entity: EntityKind = EntityKind.LEAD
    parent: str | None = None
    reads: list[Partition] = attrs.field(factory=list)

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        return []

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        self.reads.append(partition)
        lead_id = partition.params["lead_id"]
        yield Page(records=[{"external_id": lead_id, "fields": {"q": "a"}, "page_id": "pg_1"}])


class SyncStreamWebhooks(LeadWebhooks):
    def parse(self, body: bytes) -> list[WebhookEvent]:
        return [
            attrs.evolve(
                e, payload={"sync_stream": "leads", "sync_params": {"lead_id": e.external_id}}
            )
            for e in super().parse(body)
        ]


async def test_a_sync_stream_event_is_a_targeted_read_of_that_stream(
    store: Store, settings: Settings
) -> None:
    stream = TargetedLeads()
    registry = registry_with(settings, SyncStreamWebhooks(), streams=(stream,))
    target = connect_route(store, "acme")
    put(store, body_of(6))

    async def contexts(platform: str, for_target: RouteTarget) -> PlatformContext:
        return context_for(registry, settings, platform, httpx2.AsyncClient())

    report = await InboxProcessor(store, registry, settings, contexts=contexts).run()
    assert report.processed == 1
    assert [p.params for p in stream.reads] == [{"lead_id": "lead_6"}]
    (lead,) = stored_leads(store, target.org_id)
    assert (lead.external_id, lead.page_id) == ("lead_6", "pg_1")


async def test_lead_values_never_reach_a_log_line(
    store: Store, registry: Registry, settings: Settings
) -> None:
    connect_route(store, "acme")
    put(store, body_of(7, lead=lead_of(7, email="hidden.person@example.org")))
    put(store, body_of(8, account="act_unknown", lead=lead_of(8, email="other.hidden@example.org")))
    with capture_logs() as logs:
        report = await processor(store, registry, settings).run()
    assert (report.processed, report.unroutable) == (1, 1)
    assert "hidden" not in repr(logs)


def test_processed_bodies_are_purged_after_the_retention(
    store: Store, database: TestDatabase
) -> None:
    settings = database.settings(CMIS_INBOX_RETENTION_DAYS="7")
    old, recent, pending = put(store, body_of(1), body_of(2), body_of(3))
    with store.system() as conn:
        for row_id, when in ((old, NOW - dt.timedelta(days=8)), (recent, NOW)):
            conn.execute(
                update(webhook_events)
                .where(webhook_events.c.id == row_id)
                .values(status="processed", processed_at=when)
            )
    assert purge_processed(store, settings, now=NOW) == 1
    assert row(store, old).body is None and row(store, old).dedupe_key == "id:evt_1"
    assert row(store, recent).body is not None
    assert row(store, pending).body is not None


class NonceWebhooks(LeadWebhooks):
    """Each parse gives the lead a new nonce: a second application would be an update."""

    def parse(self, body: bytes) -> list[WebhookEvent]:
        return [
            attrs.evolve(
                e, payload={**e.payload, "lead": {**e.payload["lead"], "n": uuid.uuid4().hex}}
            )
            for e in super().parse(body)
        ]


def test_two_processors_over_10000_rows_apply_each_delivery_once(
    database: TestDatabase, store: Store
) -> None:
    settings = database.settings()
    counter = ProcessedCounter()
    registry = registry_with(settings, NonceWebhooks(), counter)
    target = connect_route(store, "acme")
    total = 10_000
    with store.system() as conn:
        conn.execute(
            insert(webhook_events),
            [
                {
                    "platform": "example",
                    "dedupe_key": f"id:evt_{n}",
                    "received_at": NOW,
                    "headers": {},
                    "body": body_of(n, lead=lead_of(n)),
                }
                for n in range(total)
            ],
        )
    reports = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with open_store(settings) as own:  # its own pool: as another process would
                run = InboxProcessor(
                    own, registry, settings, options=ProcessOptions(batch_size=250)
                )
                reports.append(asyncio.run(run.run()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # side effects, counted where they happen
    assert sum(r.leads for r in reports) == total  # inserted + updated: no lead written twice
    assert len(counter.events) == total
    assert len({e.delivery_id for e in counter.events}) == total
    with store.org(target.org_id, write=False) as conn:
        assert conn.execute(select(func.count()).select_from(leads)).scalar_one() == total
    assert sum(r.processed for r in reports) == total
    assert all(r.processed > 0 for r in reports), "both processors took part"
    with store.system(write=False) as conn:
        states = dict(
            conn.execute(
                select(webhook_events.c.status, func.count()).group_by(webhook_events.c.status)
            ).all()
        )
        assert states == {"processed": total}
        assert conn.execute(select(func.max(webhook_events.c.attempts))).scalar_one() == 1


@pytest.mark.parametrize("status", ["failed", "unroutable"])
def test_retry_refuses_unknown_and_processed_rows(store: Store, status: str) -> None:
    from cmis_core.errors import UsageError

    (row_id,) = put(store, body_of(1))
    with store.system() as conn:
        with pytest.raises(UsageError, match="no inbox row"):
            inbox.retry(conn, row_id + 1000)
        conn.execute(
            update(webhook_events).where(webhook_events.c.id == row_id).values(status=status)
        )
        assert inbox.retry(conn, row_id).status == "received"
        conn.execute(
            update(webhook_events).where(webhook_events.c.id == row_id).values(status="processed")
        )
        with pytest.raises(UsageError, match="already processed"):
            inbox.retry(conn, row_id)
