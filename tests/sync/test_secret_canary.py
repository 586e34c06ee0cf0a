"""Secrets never leak along connect -> sync -> failure: not in logs, results, run rows or state."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from cmis_core.errors import ReauthRequired
from cmis_core.store import Store, tables
from cmis_core.testing.databases import TestDatabase
from cmis_core.types import TokenSet

from .helpers import add_integration, connect, registry_for, run_sync, served


async def test_no_secret_in_logs_results_or_tables(
    store: Store, database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    registry = registry_for("example")
    caplog.set_level(logging.DEBUG)
    with served(registry, "example") as sandbox, capture_logs() as logs:
        org = store.create_org("acme")
        add_integration(store, org.id, "example")
        settings = database.settings(**sandbox.env)
        tokens = await connect(registry, "example", sandbox.env)
        secrets = [
            tokens.access_token,
            tokens.refresh_token or "",
            settings.platform("example").client_secret,
        ]
        ok = await run_sync(
            store, registry, settings, org_id=org.id, platform="example", tokens=tokens
        )
        # a failure mid-run: the token is refused and the refresh fails
        await sandbox.control("POST", "/tokens/expire", {"access_token": tokens.access_token})

        async def refuse(old: TokenSet) -> TokenSet:
            raise ReauthRequired("refused", platform="example")

        failed = await run_sync(
            store,
            registry,
            settings,
            org_id=org.id,
            platform="example",
            tokens=tokens,
            on_token_rejected=refuse,
            full_refresh=True,
        )
    assert ok.status == "succeeded" and failed.status == "failed"
    with store.org(org.id, write=False) as conn:
        rows: list[Any] = [
            *conn.execute(select(tables.sync_runs)).mappings(),
            *conn.execute(select(tables.sync_state)).mappings(),
            *conn.execute(select(tables.ad_accounts)).mappings(),
        ]
    text = "\n".join(
        [
            json.dumps(ok.to_json()),
            json.dumps(failed.to_json()),
            repr(logs),
            caplog.text,
            repr(rows),
        ]
    )
    for secret in filter(None, secrets):
        assert secret not in text
    assert any(e.get("event") == "sync.run_stopped" for e in logs)
