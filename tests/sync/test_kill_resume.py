"""A run killed with SIGKILL mid-way, started again, ends with every row exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from cmis_core.store import Store, tables
from cmis_core.testing.databases import TestDatabase

from .helpers import add_integration, connect, counts, registry_for, served

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "ad_accounts": "ad_accounts",
    "campaigns": "campaigns",
    "ad_groups": "ad_groups",
    "ads": "ads",
    "daily_metrics": "daily_metrics",
}


def start(
    database: TestDatabase, env: dict[str, str], org_id: int, tokens: Path
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sync.killable", "example", str(org_id), str(tokens)],
        cwd=ROOT,
        env={**os.environ, **database.environ(), **env, "CMIS_LOG_LEVEL": "warning"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def runs(store: Store, org_id: int) -> list[tuple[int, str, int]]:
    t = tables.sync_runs
    with store.org(org_id, write=False) as conn:
        return [
            tuple(r) for r in conn.execute(select(t.c.id, t.c.status, t.c.records).order_by(t.c.id))
        ]  # type: ignore[misc]


async def test_sigkill_then_resume_stores_every_row_once(
    store: Store, database: TestDatabase, tmp_path: Path
) -> None:
    registry = registry_for("example")
    with served(registry, "example", size="small", latency_ms=40, days=3) as sandbox:
        org = store.create_org("acme")
        add_integration(store, org.id, "example")
        tokens = await connect(registry, "example", sandbox.env)
        tokens_file = tmp_path / "tokens.json"
        tokens_file.write_text(tokens.to_json())
        expected = await sandbox.expected()

        # the first metrics reads hang for a while: the kill lands before the run can finish,
        # however slowly this test gets to look (a loaded machine)
        await sandbox.control(
            "POST",
            "/faults",
            {"path": "/v1/ad_accounts/*/insights", "kind": "delay", "delay_ms": 4000, "times": 2},
        )
        child = start(database, sandbox.env, org.id, tokens_file)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            stored = counts(store, org.id)
            if stored["campaigns"] > 0:  # some pages are committed
                break
            await asyncio.sleep(0.05)
        assert child.poll() is None, "the run ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        partial = counts(store, org.id)
        assert any(partial[table] < expected[stream] for stream, table in TABLES.items())
        assert runs(store, org.id)[0][1] == "running"  # the killed run never closed its row

        again = start(database, sandbox.env, org.id, tokens_file)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err[-2000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result["status"] == "succeeded"
        assert result["resumed"] is True

        stored = counts(store, org.id)
        for stream, table in TABLES.items():
            assert stored[table] == expected[stream], stream
        assert [(r[1]) for r in runs(store, org.id)] == ["succeeded"]  # one run, resumed
