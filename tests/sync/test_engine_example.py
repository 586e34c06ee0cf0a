"""The engine over the Example Ads sandbox on loopback: full, then incremental, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cmis_core.store import Store, tables
from cmis_core.testing.databases import TestDatabase

from .helpers import add_integration, connect, counts, registry_for, run_sync, served

STREAM_TABLE = {
    "ad_accounts": "ad_accounts",
    "campaigns": "campaigns",
    "ad_groups": "ad_groups",
    "ads": "ads",
    "daily_metrics": "daily_metrics",
}


@pytest.fixture(scope="module")
def example() -> Any:
    registry = registry_for("example")
    with served(registry, "example") as sandbox:
        yield registry, sandbox


async def test_full_then_incremental_matches_the_sandbox(
    example: Any, store: Store, database: TestDatabase
) -> None:
    registry, sandbox = example
    org = store.create_org("acme")
    add_integration(store, org.id, "example")
    settings = database.settings(**sandbox.env)
    tokens = await connect(registry, "example", sandbox.env)
    expected = await sandbox.expected()

    first = await run_sync(
        store, registry, settings, org_id=org.id, platform="example", tokens=tokens
    )
    assert first.status == "succeeded", first.to_json()
    stored = counts(store, org.id)
    for stream, table in STREAM_TABLE.items():
        assert stored[table] == expected[stream], stream
        assert first.streams[stream].records == expected[stream]
    assert first.calls > 0

    second = await run_sync(
        store, registry, settings, org_id=org.id, platform="example", tokens=tokens
    )
    assert second.status == "succeeded"
    assert counts(store, org.id) == stored  # nothing duplicated
    assert second.run_id != first.run_id
    with store.org(org.id, write=False) as conn:
        runs = conn.execute(
            select(tables.sync_runs.c.status, tables.sync_runs.c.records).order_by(
                tables.sync_runs.c.id
            )
        ).all()
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert runs[0].records == first.records
