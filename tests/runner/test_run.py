"""`cmis run` and `cmis sync` in process: due work, schedule, exit codes, the lock."""

from __future__ import annotations

import datetime as dt

import httpx2
import pytest

from cmis_core.errors import ExitCode
from cmis_core.http import HttpHub
from cmis_core.runner.local import run_due, sync_now
from cmis_core.runner.locks import integration_lock
from cmis_core.runner.work import Runtime, SyncOptions
from cmis_core.testing.serve import RunningSandbox
from cmis_core.types import utcnow

from .support import (
    cmis,
    connect_example,
    counts,
    expected_counts,
    integration_row,
    report_of,
    runs,
    set_integration,
)


async def test_run_syncs_what_is_due_then_reschedules(rt: Runtime, sandbox: RunningSandbox) -> None:
    org = rt.store.create_org("acme")
    await connect_example(rt, org.id)
    before = utcnow()

    first = await run_due(rt)
    assert first.exit_code == ExitCode.OK, first.to_json()
    [item] = first.integrations
    assert (item.org, item.platform, item.status) == ("acme", "example", "succeeded")
    assert counts(rt.store, org.id) == expected_counts(sandbox.base_url)
    row = integration_row(rt.store, org.id)
    assert row["last_sync_at"] >= before
    assert row["next_sync_at"] - row["last_sync_at"] >= dt.timedelta(seconds=3599)
    assert row["queued_at"] is None

    second = await run_due(rt)  # nothing due: the schedule says in an hour
    assert second.exit_code == ExitCode.OK
    assert [i.status for i in second.integrations if i.sync is not None] == []
    assert len(runs(rt.store, org.id)) == 1

    set_integration(rt.store, org.id, queued_at=utcnow())  # asked for ahead of schedule
    third = await run_due(rt)
    assert [i.status for i in third.integrations] == ["succeeded"]
    assert len(runs(rt.store, org.id)) == 2
    assert counts(rt.store, org.id) == expected_counts(sandbox.base_url)


async def test_a_second_runner_skips_a_locked_integration(rt: Runtime) -> None:
    org = rt.store.create_org("acme")
    await connect_example(rt, org.id)
    row = integration_row(rt.store, org.id)
    other = integration_lock(rt.store, org.id, row["id"], owner="elsewhere:1:abc")
    assert await other.acquire()
    try:
        report = await run_due(rt)
    finally:
        await other.release()
    [item] = report.integrations
    assert item.status == "locked"
    assert report.exit_code == ExitCode.TEMPFAIL
    assert runs(rt.store, org.id) == []  # nothing done, not even a run row
    after = await run_due(rt)
    assert [i.status for i in after.integrations] == ["succeeded"]


async def test_reauth_counts_once_then_is_listed(rt: Runtime, sandbox: RunningSandbox) -> None:
    org = rt.store.create_org("acme")
    other = rt.store.create_org("beta")
    await connect_example(rt, org.id)
    await connect_example(rt, other.id)
    async with httpx2.AsyncClient() as http:  # every token of the sandbox refused from now on
        (await http.post(f"{sandbox.base_url}/_sandbox/tokens/revoke", json={})).raise_for_status()
    first = await run_due(rt)
    assert first.exit_code == ExitCode.NOPERM, first.to_json()
    assert {(i.org, i.status, i.earlier) for i in first.integrations} == {
        ("acme", "needs_reauth", False),
        ("beta", "needs_reauth", False),
    }
    assert integration_row(rt.store, org.id)["status"] == "needs_reauth"

    second = await run_due(rt)  # the next hourly run: listed, not failed
    assert second.exit_code == ExitCode.OK
    assert {(i.org, i.status, i.earlier, int(i.exit_code)) for i in second.integrations} == {
        ("acme", "needs_reauth", True, 0),
        ("beta", "needs_reauth", True, 0),
    }
    explicit = await sync_now(rt, "acme")  # asked for by name: 77
    assert explicit.exit_code == ExitCode.NOPERM


async def test_sync_now_one_stream_full_refresh_and_since(
    rt: Runtime, sandbox: RunningSandbox
) -> None:
    org = rt.store.create_org("acme")
    await connect_example(rt, org.id)
    options = SyncOptions(streams=["campaigns"], full_refresh=True, lookback_days=3)
    report = await sync_now(rt, "acme", platform="example", options=options)
    assert report.exit_code == ExitCode.OK, report.to_json()
    [item] = report.integrations
    assert item.sync is not None
    assert set(item.sync.streams) == {"ad_accounts", "campaigns"}
    stored = counts(rt.store, org.id)
    assert stored["campaigns"] == expected_counts(sandbox.base_url)["campaigns"]
    assert stored["ads"] == 0 and stored["daily_metrics"] == 0

    metrics = await sync_now(
        rt, "acme", options=SyncOptions(streams=None, lookback_days=3), platform="example"
    )
    accounts = counts(rt.store, org.id)["ad_accounts"]
    assert metrics.exit_code == ExitCode.OK
    assert counts(rt.store, org.id)["daily_metrics"] == accounts * 3 * (
        expected_counts(sandbox.base_url)["ads"] // accounts
    )


def test_cli_run_json_and_exit_codes(
    env: dict[str, str],
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from cmis_core.cli import run as cli

    org = rt.store.create_org("acme")
    asyncio.run(connect_example(rt, org.id))
    done = cmis("run", "--json", env=env)  # a real process, as a scheduler starts it
    assert done.returncode == 0, done.stderr
    report = report_of(done)
    assert report["exit_code"] == 0
    [item] = report["integrations"]
    assert {"org", "platform", "status", "accounts", "streams"} <= set(item)
    assert (item["org"], item["platform"], item["status"]) == ("acme", "example", "succeeded")
    assert {a["status"] for a in item["accounts"]} == {"ok"}
    assert {"id", "status", "error"} <= set(item["accounts"][0])
    streams = {s["name"]: s for s in item["streams"]}
    assert streams["campaigns"]["records"] > 0 and streams["campaigns"]["calls"] > 0
    assert {"name", "records", "calls", "throttled"} <= set(streams["ads"])
    assert report["inbox"]["failed"] == 0

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert cli(["sync", "--org", "acme", "--platform", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli(["sync", "--org", "acme", "--stream", "ads"]) == 2
    assert "--stream needs --platform" in capsys.readouterr().err
    assert cli(["sync", "--org", "nobody"]) == 2
    capsys.readouterr()
    assert cli(["sync", "--org", "acme"]) == 0
    text = capsys.readouterr().out
    assert "acme/example: succeeded" in text
    assert "exit code 0" in text


def test_kill_9_mid_sync_then_the_next_run_proceeds_at_once(
    database: object,
    slow_sandbox: RunningSandbox,
) -> None:
    """A runner killed mid-sync: the next one neither waits nor says 75, and resumes."""
    import asyncio
    import signal

    from cmis_core.settings import Settings

    from .conftest import make_env
    from .support import cmis_popen, registry_for_example, wait_for

    env = make_env(database, slow_sandbox)  # type: ignore[arg-type]
    with Runtime.open(Settings.from_env(env), registry=registry_for_example()) as rt:
        org = rt.store.create_org("acme")
        asyncio.run(connect_example(rt, org.id))
        victim = cmis_popen("run", env=env)
        try:
            wait_for(
                lambda: counts(rt.store, org.id)["campaigns"] > 0, timeout=30, what="rows written"
            )
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.communicate()
        [killed] = runs(rt.store, org.id)
        assert killed["status"] == "running"  # it never finished

        started = utcnow()
        done = cmis("sync", "--org", "acme", "--json", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert utcnow() - started < dt.timedelta(seconds=30)
        [item] = report_of(done)["integrations"]
        assert item["status"] == "succeeded"
        assert item["run_id"] == killed["id"]  # the interrupted run was resumed
        assert counts(rt.store, org.id) == expected_counts(slow_sandbox.base_url)
        assert [r["status"] for r in runs(rt.store, org.id)] == ["succeeded"]


async def test_hub_is_made_per_loop(rt: Runtime) -> None:
    """Nothing in the runner builds a hub at import: one per event loop, closed after."""
    async with HttpHub.from_settings(rt.settings) as hub:
        assert hub is not None
