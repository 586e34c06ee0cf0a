"""A sync writes the webhook routes of what it reads: ad accounts, leads' pages and forms,
and what streams name in ``Page.routes`` (Meta's pages and forms, Google's lead forms); a
delivery parked as unroutable is processed once a sync has routed it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import insert, select

from cmis_core.errors import Fatal
from cmis_core.store import RouteTarget, Store, tables
from cmis_core.sync.writer import Batch, check_routes, routes_of, write_state
from cmis_core.testing.databases import TestDatabase
from cmis_core.types import EntityKind
from cmis_core.webhooks import inbox
from cmis_core.webhooks.process import InboxProcessor

from .helpers import FakeTime, add_integration, connect, registry_for, run_sync, served


def routes(store: Store, org_id: int, platform: str) -> dict[str, set[str]]:
    """This organisation's routes of ``platform``, external ids by kind."""
    t = tables.routes
    out: dict[str, set[str]] = {}
    with store.org(org_id, write=False) as conn:
        for kind, external_id in conn.execute(
            select(t.c.kind, t.c.external_id).where(t.c.org_id == org_id, t.c.platform == platform)
        ):
            out.setdefault(str(kind), set()).add(str(external_id))
    return out


def account_ids(store: Store, org_id: int, platform: str) -> set[str]:
    t = tables.ad_accounts
    with store.org(org_id, write=False) as conn:
        return {
            str(x)
            for x in conn.execute(
                select(t.c.external_id).where(t.c.org_id == org_id, t.c.platform == platform)
            ).scalars()
        }


# ------------------------------------------------------------------------------ units


def test_check_routes_refuses_an_unknown_kind_or_a_blank_id() -> None:
    assert check_routes([("page", "1"), ("form", 42)]) == [("page", "1"), ("form", "42")]
    with pytest.raises(Fatal, match="route kind"):
        check_routes([("campaign", "1")])
    with pytest.raises(Fatal, match="1 to 255"):
        check_routes([("form", "")])
    with pytest.raises(Fatal, match="pair"):
        check_routes(["form"])


def test_routes_of_a_batch_come_from_accounts_leads_and_pages() -> None:
    batch = Batch()
    batch.add_rows(EntityKind.AD_ACCOUNT, [{"external_id": "act_1"}])
    batch.add_rows(
        EntityKind.LEAD,
        [
            {"external_id": "l1", "page_id": "p1", "form_id": "f1"},
            {"external_id": "l2", "page_id": None, "form_id": "f1"},
        ],
    )
    batch.add_routes([("form", "f2"), ("page", "p1")])
    assert routes_of(batch) == [
        ("ad_account", "act_1"),
        ("form", "f1"),
        ("form", "f2"),
        ("page", "p1"),
    ]


# ------------------------------------------------------------------------------ platforms


async def test_example_sync_routes_every_ad_account_and_the_last_org_to_claim_wins(
    store: Store, database: TestDatabase
) -> None:
    registry = registry_for("example")
    with served(registry, "example") as sandbox:
        settings = database.settings(**sandbox.env)
        tokens = await connect(registry, "example", sandbox.env)
        first = store.create_org("first")
        first_integration = add_integration(store, first.id, "example")
        assert store.route("example", "ad_account", "nobody") is None

        result = await run_sync(
            store, registry, settings, org_id=first.id, platform="example", tokens=tokens
        )
        assert result.status == "succeeded", result.to_json()
        accounts = account_ids(store, first.id, "example")
        assert accounts
        assert routes(store, first.id, "example") == {"ad_account": accounts}
        for account in accounts:
            assert store.route("example", "ad_account", account) == RouteTarget(
                org_id=first.id, integration_id=first_integration
            )

        # another organisation connects the same accounts: its sync claims the routes
        second = store.create_org("second")
        second_integration = add_integration(store, second.id, "example")
        await run_sync(
            store, registry, settings, org_id=second.id, platform="example", tokens=tokens
        )
        some = sorted(accounts)[0]
        assert store.route("example", "ad_account", some) == RouteTarget(
            org_id=second.id, integration_id=second_integration
        )
        # a re-sync of the first that changes nothing does not take them back
        await run_sync(
            store, registry, settings, org_id=first.id, platform="example", tokens=tokens
        )
        assert store.route("example", "ad_account", some) == RouteTarget(
            org_id=second.id, integration_id=second_integration
        )


async def test_meta_leads_stream_routes_pages_and_forms_before_their_first_lead(
    store: Store, database: TestDatabase
) -> None:
    from cmis_meta.sandbox.data import SIZES, MetaData

    registry = registry_for("meta")
    data = MetaData(7, SIZES["small"])
    pages = {str(data.page(a)["id"]) for a in range(data.size.accounts)}
    forms = {str(f["id"]) for a in range(data.size.accounts) for f in data.forms(a)}
    with served(registry, "meta") as sandbox:
        settings = database.settings(**sandbox.env)
        tokens = await connect(registry, "meta", sandbox.env)
        org = store.create_org("acme")
        integration = add_integration(store, org.id, "meta")
        result = await run_sync(
            store,
            registry,
            settings,
            org_id=org.id,
            platform="meta",
            tokens=tokens,
            streams=["ad_accounts"],
        )
        assert result.status == "succeeded", result.to_json()
        accounts = account_ids(store, org.id, "meta")
        assert all(a.startswith("act_") for a in accounts)
        # a watermark in the future: the leads stream walks pages and forms, finds no lead
        future = int(dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp())
        with store.org(org.id) as conn:
            write_state(
                conn,
                {("leads", f"watermark:{a}"): future for a in accounts},
                integration_id=integration,
            )
        result = await run_sync(
            store,
            registry,
            settings,
            org_id=org.id,
            platform="meta",
            tokens=tokens,
            streams=["leads"],
        )
        assert result.status == "succeeded", result.to_json()
        assert result.stream("leads").records == 0
        found = routes(store, org.id, "meta")
        assert found == {"ad_account": accounts, "page": pages, "form": forms}
        target = RouteTarget(org_id=org.id, integration_id=integration)
        assert {store.route("meta", "page", p) for p in pages} == {target}
        assert {store.route("meta", "form", f) for f in forms} == {target}


async def test_google_lead_forms_stream_routes_each_lead_form_asset(
    store: Store, database: TestDatabase
) -> None:
    from cmis_google.sandbox.data import SIZES, Accounts

    registry = registry_for("google")
    sandboxed = Accounts(7, SIZES["small"])
    lead_forms = {str(sandboxed.lead_form_id(c.id)) for c in sandboxed.clients}
    with served(registry, "google") as sandbox:
        settings = database.settings(**sandbox.env)
        tokens = await connect(registry, "google", sandbox.env)
        org = store.create_org("acme")
        integration = add_integration(store, org.id, "google")
        result = await run_sync(
            store,
            registry,
            settings,
            org_id=org.id,
            platform="google",
            tokens=tokens,
            streams=["lead_forms"],
            clock=FakeTime(),
        )
        assert result.status == "succeeded", result.to_json()
        assert result.stream("lead_forms").records == 0
        found = routes(store, org.id, "google")
        # the lead forms, never the text assets the same query's table holds
        assert found == {"ad_account": account_ids(store, org.id, "google"), "form": lead_forms}
        assert {store.route("google", "form", f) for f in lead_forms} == {
            RouteTarget(org_id=org.id, integration_id=integration)
        }


# ------------------------------------------------------------------------------ end to end


async def test_an_unroutable_google_lead_is_stored_after_a_sync_routes_its_form(
    store: Store, database: TestDatabase
) -> None:
    from cmis_google.sandbox import WEBHOOK_KEY
    from cmis_google.sandbox.data import SIZES, Accounts
    from cmis_google.sandbox.leads import LeadDeliveries

    registry = registry_for("google")
    accounts = Accounts(7, SIZES["small"])
    first = accounts.clients[0].id
    deliveries = LeadDeliveries(accounts, key=WEBHOOK_KEY, form_id=accounts.lead_form_id(first))
    body = json.dumps(deliveries.body(1, key=WEBHOOK_KEY)).encode()
    verifier = registry.webhook_verifier("google")
    with served(registry, "google") as sandbox:
        settings = database.settings(**sandbox.env)
        org = store.create_org("acme")
        add_integration(store, org.id, "google")
        with store.system() as conn:
            row_id = conn.execute(
                insert(tables.webhook_events)
                .values(
                    platform="google",
                    dedupe_key="lead:first",
                    headers={},
                    body=verifier.mask(body),
                )
                .returning(tables.webhook_events.c.id)
            ).scalar_one()
        processor = InboxProcessor(store, registry, settings)
        report = await processor.run()
        assert (report.unroutable, report.processed) == (1, 0)
        assert status_of(store, row_id) == "unroutable"

        tokens = await connect(registry, "google", sandbox.env)
        result = await run_sync(
            store,
            registry,
            settings,
            org_id=org.id,
            platform="google",
            tokens=tokens,
            streams=["lead_forms"],
            clock=FakeTime(),
        )
        assert result.status == "succeeded", result.to_json()
        with store.system() as conn:
            assert inbox.requeue_unroutable(conn, platform="google") == 1
        report = await processor.run()
        assert (report.processed, report.leads) == (1, 1)
        assert status_of(store, row_id) == "processed"
        with store.org(org.id, write=False) as conn:
            (lead,) = conn.execute(select(tables.leads)).all()
        assert lead.form_id == str(accounts.lead_form_id(first))
        assert lead.external_id == json.loads(body)["lead_id"]


def status_of(store: Store, row_id: int) -> Any:
    t = tables.webhook_events
    with store.system(write=False) as conn:
        return conn.execute(select(t.c.status).where(t.c.id == row_id)).scalar_one()
