"""Past one machine: `cmis run --executor celery` and a real `cmis worker` process, over
the local Redis and the local RabbitMQ (never ``task_always_eager``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cmis_core.runner.work import Runtime
from cmis_core.settings import Settings
from cmis_core.store import tables
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.serve import RunningSandbox

from .conftest import make_env
from .support import (
    cmis,
    cmis_popen,
    connect_example,
    counts,
    expected_counts,
    registry_for_example,
    report_of,
    runs,
    wait_for,
)

pytest.importorskip("celery")
ORGS = ("acme", "beta", "gamma")


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A broker nobody else uses: a key prefix on Redis, a new vhost on RabbitMQ."""
    queue = f"cmis-test-{secrets.token_hex(4)}"
    if request.param == "redis":
        redis = pytest.importorskip("redis")
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        yield {"CMIS_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "CMIS_CELERY_QUEUE": queue}
        keys = list(client.scan_iter(match=f"{queue}:*"))
        if keys:
            client.delete(*keys)
        client.close()
        return
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", queue], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(
            [*ctl, "set_permissions", "-p", queue, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield {
            "CMIS_CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{queue}",
            "CMIS_CELERY_QUEUE": queue,
        }
    finally:
        subprocess.run([*ctl, "delete_vhost", queue], check=False, capture_output=True, timeout=60)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _running(rt: Runtime, org_ids: list[int]) -> bool:
    return any(r["status"] == "running" for o in org_ids for r in runs(rt.store, o))


def _all_synced(rt: Runtime, org_ids: list[int], expected: dict[str, int]) -> bool:
    return all(
        [r["status"] for r in runs(rt.store, o)] == ["succeeded"]
        and counts(rt.store, o) == expected
        for o in org_ids
    )


def test_worker_syncs_several_integrations_and_survives_a_kill(
    postgres_database: TestDatabase, slow_sandbox: RunningSandbox, broker: dict[str, str]
) -> None:
    env = {**make_env(postgres_database, slow_sandbox), **broker}
    expected = expected_counts(slow_sandbox.base_url)
    with Runtime.open(Settings.from_env(env), registry=registry_for_example()) as rt:
        org_ids = []
        for slug in ORGS:
            org = rt.store.create_org(slug)
            asyncio.run(connect_example(rt, org.id))
            org_ids.append(org.id)

        first = cmis("run", "--executor", "celery", "--json", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        queued = report_of(first)
        assert sorted((i["org"], i["status"]) for i in queued["integrations"]) == [
            (slug, "queued") for slug in ORGS
        ]
        assert queued["inbox"] == {"queued": 1}
        again = report_of(cmis("run", "--executor", "celery", "--json", env=env))
        assert again["integrations"] == []  # marked in the picking transaction: not twice
        assert again["inbox"] is None

        worker = cmis_popen("worker", "--concurrency", "2", "--loglevel", "warning", env=env)
        try:
            wait_for(lambda: _running(rt, org_ids), timeout=60, what="a sync to start")
            children = _children(worker.pid)
            assert children, "the prefork pool has no processes"
            for child in children:  # kill -9 the pool mid-task: tasks are delivered again
                os.kill(child, signal.SIGKILL)
            wait_for(lambda: _all_synced(rt, org_ids, expected), timeout=120, what="every sync")
            assert worker.poll() is None  # the worker itself lived on
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.communicate()
        for org_id in org_ids:  # the killed runs were resumed, not restarted
            [run] = runs(rt.store, org_id)
            assert run["status"] == "succeeded"
        with rt.store.system(write=False) as conn:
            held = conn.execute(
                select(tables.leases.c.name).where(
                    tables.leases.c.name.like("queued:%"), tables.leases.c.owner.is_not(None)
                )
            ).all()
        assert held == []  # every task gave its mark back


def test_the_celery_executor_refuses_sqlite(
    sqlite_database: TestDatabase, sandbox: RunningSandbox
) -> None:
    env = {
        **make_env(sqlite_database, sandbox),
        "CMIS_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    for args in (("run", "--executor", "celery"), ("worker",)):
        done = cmis(*args, env=env)
        assert done.returncode == 2, done.stderr
        assert "refuses SQLite" in done.stderr
