"""Helpers of the runner tests: a connected example integration, the CLI in a subprocess,
database probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
from sqlalchemy import func, select, update

from cmis_core.auth import connect as flows
from cmis_core.factory import Registry
from cmis_core.runner.work import Runtime
from cmis_core.settings import Settings
from cmis_core.store import Store, tables
from cmis_core.vault import SecretKey

KEY = SecretKey.generate().encoded()
DATA_TABLES = ("ad_accounts", "campaigns", "ad_groups", "ads", "daily_metrics")


def runner_environ(
    database_env: Mapping[str, str], sandbox_env: Mapping[str, str]
) -> dict[str, str]:
    """The variables a runner process needs: the database, the sandbox, a key."""
    return {
        **database_env,
        **sandbox_env,
        "CMIS_SECRET_KEYS": KEY,
        "CMIS_PUBLIC_URL": "http://127.0.0.1:8000",
        "CMIS_PLUGINS": "example",
        "CMIS_LOG_FORMAT": "json",
    }


async def connect_example(rt: Runtime, org_id: int) -> None:
    """The example platform's OAuth flow against its sandbox, for organisation ``org_id``."""
    async with httpx2.AsyncClient(timeout=10.0) as http:
        start = await flows.begin_connect(
            rt.store,
            rt.vault,
            rt.registry,
            rt.settings,
            org_id=org_id,
            platform="example",
            http=http,
        )
        answer = await http.get(start.auth_url)
        assert answer.status_code == 302, answer.text
        params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        await flows.complete_connect(
            rt.store,
            rt.vault,
            rt.registry,
            rt.settings,
            platform="example",
            params=params,
            http=http,
        )


def integration_row(store: Store, org_id: int) -> Any:
    t = tables.integrations
    with store.org(org_id, write=False) as conn:
        return conn.execute(select(t).where(t.c.org_id == org_id)).mappings().one()


def set_integration(store: Store, org_id: int, **values: Any) -> None:
    t = tables.integrations
    with store.org(org_id) as conn:
        conn.execute(update(t).where(t.c.org_id == org_id).values(**values))


def counts(store: Store, org_id: int) -> dict[str, int]:
    out = {}
    with store.org(org_id, write=False) as conn:
        for name in DATA_TABLES:
            table = getattr(tables, name)
            out[name] = int(
                conn.execute(
                    select(func.count()).select_from(table).where(table.c.org_id == org_id)
                ).scalar_one()
            )
    return out


def runs(store: Store, org_id: int) -> list[Any]:
    t = tables.sync_runs
    with store.org(org_id, write=False) as conn:
        return list(conn.execute(select(t).where(t.c.org_id == org_id).order_by(t.c.id)).mappings())


def expected_counts(base_url: str) -> dict[str, int]:
    answer = httpx2.get(f"{base_url}/_sandbox/expected", timeout=10)
    answer.raise_for_status()
    streams = answer.json()["streams"]
    return {name: int(streams[name]) for name in DATA_TABLES}


def cmis(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``cmis ARGS`` in a subprocess with exactly ``env`` (plus PATH and HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "cmis_core", *args],
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cmis_popen(*args: str, env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cmis_core", *args],
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, **env}


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report a ``--json`` run printed (its last stdout line)."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def wait_for(check: Callable[[], bool], *, timeout: float = 30.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def registry_for_example() -> Registry:
    import importlib.metadata as md

    from cmis_core.factory import load_plugins

    eps = [ep for ep in md.entry_points(group="cmis") if ep.name == "example"]
    return load_plugins(Settings.from_env({"CMIS_PLUGINS_STRICT": "1"}), entry_points=eps)
