"""Bulk upsert on both backends: inserted / updated / unchanged, and nothing half-written."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import time

import pytest
from sqlalchemy import select, text

from cmis_core.errors import UsageError
from cmis_core.store import Store, UpsertResult, scoped, tables, upsert
from cmis_core.types import EntityStatus

KEY = ("platform", "level", "entity_external_id", "date")


def metric(i: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "platform": "meta",
        "level": "ad",
        "entity_external_id": f"ad{i}",
        "date": dt.date(2024, 5, 1) + dt.timedelta(days=i % 3),
        "account_external_id": "act_1",
        "currency": "EUR",
        "impressions": 1000 + i,
        "clicks": i,
        "spend_micros": 1_234_567 * i,
        "conversions": decimal.Decimal("0.333333") * i,
        "conversions_value_micros": None,
        "attribution": "7d_click",
    }
    row.update(changes)
    return row


def stored(store: Store, org_id: int) -> dict[str, dict[str, object]]:
    with store.org(org_id, write=False) as conn:
        rows = conn.execute(scoped(conn, tables.daily_metrics)).mappings().all()
    return {str(r["entity_external_id"]): dict(r) for r in rows}


def test_insert_then_unchanged_then_changed(store: Store):
    org = store.create_org("acme")
    rows = [metric(i) for i in range(50)]
    result = store.upsert(org.id, tables.daily_metrics, rows, KEY, page_size=20)
    assert (result.inserted, result.updated, result.unchanged) == (50, 0, 0)
    first = stored(store, org.id)
    assert first["ad7"]["conversions"] == decimal.Decimal("2.333331")
    assert first["ad7"]["spend_micros"] == 8_641_969
    result = store.upsert(org.id, tables.daily_metrics, rows, KEY)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 50)
    assert stored(store, org.id) == first  # updated_at untouched: nothing was written
    changed = [metric(i, clicks=999) if i % 10 == 0 else metric(i) for i in range(55)]
    result = store.upsert(org.id, tables.daily_metrics, changed, KEY)
    assert (result.inserted, result.updated, result.unchanged) == (5, 5, 45)
    after = stored(store, org.id)
    assert after["ad10"]["clicks"] == 999
    assert after["ad10"]["updated_at"] > first["ad10"]["updated_at"]
    assert after["ad11"]["updated_at"] == first["ad11"]["updated_at"]


def test_json_and_null_changes_are_detected(store: Store):
    org = store.create_org("acme")
    base = {"platform": "meta", "external_id": "c1", "account_external_id": "act_1", "name": "C"}
    with store.org(org.id) as conn:
        assert (
            upsert(
                conn,
                tables.campaigns,
                [{**base, "raw": {"b": 1, "a": [1, 2]}}],
                ("platform", "external_id"),
            ).inserted
            == 1
        )
        same = upsert(
            conn,
            tables.campaigns,
            [{**base, "raw": {"a": [1, 2], "b": 1}}],
            ("platform", "external_id"),
        )
        assert same.unchanged == 1
        assert (
            upsert(
                conn,
                tables.campaigns,
                [{**base, "raw": {"a": [2, 1], "b": 1}}],
                ("platform", "external_id"),
            ).updated
            == 1
        )
        assert (
            upsert(
                conn, tables.campaigns, [{**base, "raw": None}], ("platform", "external_id")
            ).updated
            == 1
        )
        assert (
            upsert(
                conn, tables.campaigns, [{**base, "raw": None}], ("platform", "external_id")
            ).unchanged
            == 1
        )
        enum_row = {**base, "raw": None, "status": EntityStatus.PAUSED}
        assert upsert(conn, tables.campaigns, [enum_row], ("platform", "external_id")).updated == 1
        row = conn.execute(scoped(conn, tables.campaigns)).one()
    assert row.status == "paused"
    assert row.raw is None


def test_last_row_wins_when_a_key_repeats(store: Store):
    org = store.create_org("acme")
    result = store.upsert(
        org.id, tables.daily_metrics, [metric(1, clicks=1), metric(1, clicks=2)], KEY
    )
    assert (result.inserted, result.unchanged) == (1, 0)
    assert stored(store, org.id)["ad1"]["clicks"] == 2


def test_same_natural_key_in_two_orgs_are_two_rows(store: Store):
    a, b = store.create_org("org-a"), store.create_org("org-b")
    assert store.upsert(a.id, tables.daily_metrics, [metric(1)], KEY).inserted == 1
    assert store.upsert(b.id, tables.daily_metrics, [metric(1, clicks=5)], KEY).inserted == 1
    assert stored(store, a.id)["ad1"]["clicks"] == 1
    assert stored(store, b.id)["ad1"]["clicks"] == 5


def test_bad_input_is_refused_before_anything_is_written(store: Store):
    a, b = store.create_org("org-a"), store.create_org("org-b")
    cases = [
        ([{**metric(1), "org_id": b.id}, {**metric(2), "org_id": a.id}], "names organisation"),
        ([metric(1), {k: v for k, v in metric(2).items() if k != "clicks"}], "same columns"),
        ([{**metric(1), "nope": 1}], "no column 'nope'"),
        ([{**metric(1), "updated_at": dt.datetime.now(dt.UTC)}], "set by the upsert"),
    ]
    for rows, message in cases:
        with pytest.raises(UsageError, match=message):
            store.upsert(b.id, tables.daily_metrics, rows, KEY)
    with pytest.raises(UsageError, match="not a unique key"):
        store.upsert(b.id, tables.daily_metrics, [metric(1)], ("platform", "entity_external_id"))
    with pytest.raises(UsageError, match="org transaction"), store.system() as conn:
        upsert(conn, tables.daily_metrics, [metric(1)], KEY)
    assert stored(store, b.id) == {}


def test_system_table_upsert_needs_no_org(store: Store):
    with store.system() as conn:
        lease = {"name": "refresh:1", "owner": "w1", "version": 1}
        assert upsert(conn, tables.leases, [lease], ("name",)).inserted == 1
        assert upsert(conn, tables.leases, [{**lease, "version": 2}], ("name",)).updated == 1
        assert conn.execute(select(tables.leases.c.version)).scalar_one() == 2


def test_a_row_naming_its_own_org_and_rows_in_any_key_order_are_accepted(store: Store):
    org = store.create_org("acme")
    reordered = dict(reversed(list(metric(2).items())))
    rows = [{**metric(1), "org_id": org.id}, {**reordered, "org_id": org.id}]
    assert store.upsert(org.id, tables.daily_metrics, rows, KEY).inserted == 2
    assert set(stored(store, org.id)) == {"ad1", "ad2"}


def test_new_rows_between_stored_keys_and_two_calls_in_one_transaction(store: Store):
    org = store.create_org("acme")
    evens = [metric(i) for i in range(0, 40, 2)]
    assert store.upsert(org.id, tables.daily_metrics, evens, KEY).inserted == 20
    first = stored(store, org.id)
    # odd keys sort between the stored even ones: each row is looked up, not bulk-inserted
    everything = [metric(i, clicks=-1) if i % 4 == 0 else metric(i) for i in range(40)]
    with store.org(org.id) as conn:
        result = upsert(conn, tables.daily_metrics, everything, KEY)
        assert (result.inserted, result.updated, result.unchanged) == (20, 10, 10)
        again = upsert(conn, tables.daily_metrics, everything[:5], KEY)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    after = stored(store, org.id)
    assert len(after) == 40
    assert after["ad4"]["clicks"] == -1
    assert after["ad6"]["updated_at"] == first["ad6"]["updated_at"]


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_unchanged_rows_take_no_row_lock(store: Store):
    org = store.create_org("acme")
    rows = [metric(i) for i in range(10)]
    store.upsert(org.id, tables.daily_metrics, rows, KEY)
    with store.org(org.id) as holder:
        holder.execute(text("SELECT * FROM daily_metrics FOR UPDATE")).all()
        with store.org(org.id) as conn:
            conn.execute(text("SET LOCAL lock_timeout = '1s'"))
            result = upsert(conn, tables.daily_metrics, rows, KEY)
    assert result.unchanged == 10


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_a_key_inserted_concurrently_after_the_lookup_is_updated(store: Store):
    org = store.create_org("acme")
    done: dict[str, object] = {}
    with store.org(org.id) as first:
        upsert(first, tables.daily_metrics, [metric(3, clicks=1)], KEY)  # not committed yet

        def second() -> None:
            try:
                done["result"] = store.upsert(
                    org.id, tables.daily_metrics, [metric(i, clicks=2) for i in range(5)], KEY
                )
            except Exception as exc:  # handed to the test thread
                done["error"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        with store.system(write=False) as watcher:  # until the second one waits on our row
            waiting = 0
            deadline = time.monotonic() + 60  # generous: a loaded machine starts threads late
            while time.monotonic() < deadline and thread.is_alive():
                # pg_stat_activity is read once per transaction unless its snapshot is cleared
                watcher.execute(text("SELECT pg_stat_clear_snapshot()"))
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.05)
        assert waiting, "the second upsert never waited for the first one"
    thread.join(timeout=30)
    assert "error" not in done, done.get("error")
    result = done["result"]
    assert isinstance(result, UpsertResult)
    assert (result.inserted, result.updated, result.unchanged) == (4, 1, 0)
    assert {k: v["clicks"] for k, v in stored(store, org.id).items()} == {
        f"ad{i}": 2 for i in range(5)
    }


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_natural_key_text_columns_compare_bytewise(store: Store):
    with store.system(write=False) as conn:
        collations = dict(
            conn.execute(
                text(
                    "SELECT table_name || '.' || column_name, collation_name "
                    "FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name IN ('daily_metrics', 'ads', 'sync_state')"
                )
            ).all()
        )
    assert collations["daily_metrics.entity_external_id"] == "C"
    assert collations["daily_metrics.level"] == "C"
    assert collations["ads.external_id"] == "C"
    assert collations["sync_state.partition_key"] == "C"
    assert collations["ads.name"] is None  # words keep the database's collation


def test_decimals_beyond_the_column_scale_are_stored_rounded_and_seen_unchanged(store: Store):
    org = store.create_org("acme")
    rows = [metric(1, conversions=decimal.Decimal("1.23456789")), metric(2, conversions=None)]
    assert store.upsert(org.id, tables.daily_metrics, rows, KEY).inserted == 2
    assert store.upsert(org.id, tables.daily_metrics, rows, KEY).unchanged == 2
    saved = stored(store, org.id)
    assert saved["ad2"]["conversions"] is None
    if store.is_postgres:
        assert saved["ad1"]["conversions"] == decimal.Decimal("1.234568")
    bumped = [metric(1, conversions=decimal.Decimal("1.2345")), metric(2, conversions=1)]
    assert store.upsert(org.id, tables.daily_metrics, bumped, KEY).updated == 2
    assert stored(store, org.id)["ad2"]["conversions"] == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_the_key_range_check_reads_a_few_index_pages_whatever_the_table_size(store: Store):
    """Fresh pages into a big table: the check that decides "all new" must enter the index at
    the page's smallest key, not walk the org's rows (it once cost 0.3 s a page at 2 million
    rows, as a sequential scan and then as a filtered walk beside RLS's org equality)."""
    import json

    from cmis_core.store.bulk import _plan, _postgres_sql

    org = store.create_org("acme")
    other = store.create_org("beta")
    for org_id in (org.id, other.id):
        store.upsert(org_id, tables.daily_metrics, [metric(i) for i in range(20_000)], KEY)
    page = [metric(i, entity_external_id=f"zz{i}") for i in range(500)]
    with store.org(org.id) as conn:
        assert upsert(conn, tables.daily_metrics, page, KEY).inserted == 500
        sql = _postgres_sql(_plan(tables.daily_metrics, tuple(page[0]), KEY))
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # the page is still in the temporary table
            cur.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql.any_in_range,
                {"org": org.id, "now": None},
            )
            plan = cur.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def scans(node: dict) -> list[dict]:
        found = [node] if node.get("Relation Name") == "daily_metrics" else []
        for child in node.get("Plans", []):
            found += scans(child)
        return found

    (scan,) = scans(plan[0]["Plan"])
    assert scan["Node Type"] in ("Index Only Scan", "Index Scan"), scan["Node Type"]
    touched = scan.get("Shared Hit Blocks", 0) + scan.get("Shared Read Blocks", 0)
    assert touched <= 10, f"{touched} pages read for one range check over 40,000 rows"
