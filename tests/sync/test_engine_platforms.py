"""The engine over the Google and Meta sandboxes: one account failing leaves the others
complete; Meta's second sync asks only for what changed; appsecret_proof on every call."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from cmis_core.store import Store, tables
from cmis_core.sync.windows import account_today
from cmis_core.testing.databases import TestDatabase
from cmis_core.types import TokenSet

from .helpers import (
    FakeTime,
    add_integration,
    connect,
    counts,
    metric_counts,
    registry_for,
    run_sync,
    served,
)


def per_account(store: Store, org_id: int, table: Any) -> dict[str, int]:
    with store.org(org_id, write=False) as conn:
        rows = conn.execute(
            select(table.c.account_external_id, func.count())
            .where(table.c.org_id == org_id)
            .group_by(table.c.account_external_id)
        ).all()
    return {str(a): int(n) for a, n in rows}


async def test_google_account_failed_leaves_the_others_complete(
    store: Store, database: TestDatabase
) -> None:
    registry = registry_for("google")
    with served(registry, "google", page_size=7) as sandbox:
        org = store.create_org("acme")
        add_integration(store, org.id, "google")
        settings = database.settings(**sandbox.env)
        tokens = await connect(registry, "google", sandbox.env)
        expected = await sandbox.expected()

        # Google has no usage headers: the client's token bucket (5 calls/s) spaces the
        # calls; a fake clock records those waits instead of sleeping them
        full = await run_sync(
            store,
            registry,
            settings,
            org_id=org.id,
            platform="google",
            tokens=tokens,
            clock=FakeTime(),
        )
        assert full.status == "succeeded", full.to_json()
        campaigns = per_account(store, org.id, tables.campaigns)
        assert sum(campaigns.values()) == expected["campaigns"]
        denied = sorted(campaigns)[1]

        # a fresh organisation, with one account refusing access
        other = store.create_org("beta")
        add_integration(store, other.id, "google")
        await sandbox.control("POST", "/customers/deny", {"customer_id": denied})
        result = await run_sync(
            store,
            registry,
            settings,
            org_id=other.id,
            platform="google",
            tokens=tokens,
            clock=FakeTime(),
        )
        assert result.status == "partial"
        assert result.accounts[denied].status == "failed"
        assert "USER_PERMISSION_DENIED" in (result.accounts[denied].error or "")
        assert {a for a, r in result.accounts.items() if r.status == "ok"} == set(campaigns) - {
            denied
        }
        got = per_account(store, other.id, tables.campaigns)
        assert denied not in got
        assert got == {a: n for a, n in campaigns.items() if a != denied}
        metrics = per_account(store, other.id, tables.daily_metrics)
        assert denied not in metrics and len(metrics) == len(campaigns) - 1

        await sandbox.control("DELETE", "/customers/deny")
        again = await run_sync(
            store,
            registry,
            settings,
            org_id=other.id,
            platform="google",
            tokens=tokens,
            clock=FakeTime(),
        )
        assert again.status == "succeeded"
        assert per_account(store, other.id, tables.campaigns) == campaigns
        assert metric_counts(store, other.id) == metric_counts(store, org.id)


@pytest.fixture(scope="module")
def meta() -> Any:
    registry = registry_for("meta")
    with served(registry, "meta", require_proof=True, job_polls=1) as sandbox:
        yield registry, sandbox


async def test_meta_full_then_only_what_changed(
    meta: Any, store: Store, database: TestDatabase
) -> None:
    registry, sandbox = meta
    org = store.create_org("acme")
    add_integration(store, org.id, "meta")
    settings = database.settings(**sandbox.env)
    minted = await sandbox.control("POST", "/meta/system_user_token")
    tokens = TokenSet(access_token=minted["access_token"])
    expected = await sandbox.expected()

    first = await run_sync(store, registry, settings, org_id=org.id, platform="meta", tokens=tokens)
    assert first.status == "succeeded", first.to_json()
    stored = counts(store, org.id)
    assert stored["campaigns"] == expected["campaigns"]
    assert stored["ad_groups"] == expected["ad_groups"]
    assert stored["ads"] == expected["ads"]
    assert stored["leads"] == expected["leads"]
    levels = metric_counts(store, org.id)
    assert levels["ad"] == expected["daily_metrics_ad"]
    assert levels["account"] == expected["daily_metrics_account"]
    with store.org(org.id, write=False) as conn:
        statuses = set(conn.execute(select(tables.ads.c.status)).scalars())
    assert {"deleted", "archived"} <= statuses  # deleted and archived ads kept, with status

    touched = (await sandbox.control("POST", "/meta/touch", {"kind": "ads", "count": 2}))["touched"]
    second = await run_sync(
        store, registry, settings, org_id=org.id, platform="meta", tokens=tokens
    )
    assert second.status == "succeeded", second.to_json()
    assert 2 <= second.streams["ads"].records < expected["ads"] / 2
    assert second.streams["campaigns"].records < expected["campaigns"]
    assert counts(store, org.id) == stored
    with store.org(org.id, write=False) as conn:
        times = dict(
            conn.execute(
                select(tables.ads.c.external_id, tables.ads.c.updated_time).where(
                    tables.ads.c.external_id.in_(touched)
                )
            ).all()
        )
    first_ads = first.streams["ads"].records
    assert len(times) == 2 and first_ads == expected["ads"]


async def test_meta_report_runs_run_at_once_and_the_watermark_is_the_last_day(
    store: Store, database: TestDatabase
) -> None:
    import datetime as dt

    registry = registry_for("meta")
    # its own sandbox (counts start at 0); 30 ms a call keeps the first run open while the
    # next ones are started
    with served(registry, "meta", job_polls=3, latency_ms=30) as sandbox:
        await _report_runs_at_once(registry, sandbox, store, database, dt.datetime.now(dt.UTC))


async def _report_runs_at_once(
    registry: Any, sandbox: Any, store: Store, database: TestDatabase, now: Any
) -> None:
    org = store.create_org("runs")
    add_integration(store, org.id, "meta")
    settings = database.settings(
        **sandbox.env, CMIS_META_HISTORY_DAYS="30", CMIS_META_DAYS_PER_JOB="5"
    )
    minted = await sandbox.control("POST", "/meta/system_user_token")
    tokens = TokenSet(access_token=minted["access_token"])
    expected = await sandbox.expected()

    result = await run_sync(
        store, registry, settings, org_id=org.id, platform="meta", tokens=tokens
    )
    assert result.status == "succeeded", result.to_json()
    # six 5-day partitions per account, three report runs at a time
    assert result.streams["daily_metrics_ad"].partitions == 6 * len(result.accounts)
    assert (await sandbox.control("GET", "/meta/stats"))["max_running_report_runs"] >= 2
    assert metric_counts(store, org.id)["ad"] == expected["daily_metrics_ad"]
    with store.org(org.id, write=False) as conn:
        t = tables.sync_state
        marks = dict(
            conn.execute(
                select(t.c.partition_key, t.c.state).where(
                    t.c.stream == "daily_metrics_ad", t.c.partition_key.like("metrics_until:%")
                )
            ).all()
        )
        inflight = conn.execute(
            select(func.count()).where(
                t.c.stream == "daily_metrics_ad", t.c.partition_key.like("inflight:%")
            )
        ).scalar_one()
        zones = dict(
            conn.execute(
                select(tables.ad_accounts.c.external_id, tables.ad_accounts.c.time_zone)
            ).all()
        )
    # each watermark is the last day read: today in that account's time zone
    assert marks == {
        f"metrics_until:{account}": account_today({"time_zone": zone}, now=now).isoformat()
        for account, zone in zones.items()
    }
    assert len(marks) == len(result.accounts) and None not in zones.values()
    assert inflight == 0
