"""Webhook receive throughput and a 10,000-delivery burst, against `cmis serve` on loopback.

For each backend: a fresh database (PostgreSQL: a new database and roles on
CMIS_TEST_POSTGRES_URL's server, the service connected as the application role, server
default ``synchronous_commit = on``; SQLite: a file in a temporary folder), then

1. throughput: ``wrk`` with ``bench/webhooks.lua`` (every request a new delivery, signed
   HMAC-SHA256 over ``{timestamp}.{body}`` in Lua), 64 connections, ``--duration``
   seconds; committed deliveries/s counted in the database, latency p50/p99 from wrk;
2. burst: 10,000 distinct deliveries sent at once (64 in flight, from Python: the
   correctness check, not the throughput), each re-sent once; then two
   `cmis webhooks process` processes at the same time. Checks: 10,000 rows, each stored
   once, all processed, none claimed twice (attempts = 1).

wrk is looked up on PATH; when missing and running as root, the script installs the Debian
package (``apt-get install -y wrk``) and says so.

    python bench/webhooks.py [--backend sqlite|postgres|both] [--duration 60]
        [--connections 64] [--workers 1] [--burst 10000] [--log-level warning]
        [--skip-burst] [--profile FILE]

CPU per delivery is reported for the service (its process and workers), wrk and the
PostgreSQL backends of the bench database, from /proc. ``--profile`` runs ``py-spy record``
(``pip install py-spy``) on the service during the run and writes collapsed stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from cmis_core.store import open_store
from cmis_core.store.tables import integrations, routes, webhook_events
from cmis_core.testing.databases import (
    TestDatabase,
    new_postgres_database,
    new_postgres_template,
    sqlite_database_at,
)

HERE = Path(__file__).parent
SECRET = "bench-webhook-secret"
VENV_BIN = Path(sys.executable).parent


def find_wrk() -> str:
    """wrk's path; installs the Debian package when missing (as root)."""
    found = shutil.which("wrk")
    if found:
        print(f"wrk: using {found}")
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: run `apt-get install -y wrk` as root (Debian package)")
    print("wrk: not found, installing the Debian package (apt-get install -y wrk)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk could not be installed")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environ(db: TestDatabase, log_level: str) -> dict[str, str]:
    return {
        **os.environ,
        **db.environ(),
        "CMIS_PLUGINS": "example",
        "CMIS_EXAMPLE_WEBHOOK_SECRET": SECRET,
        "CMIS_LOG_LEVEL": log_level,
        "CMIS_LOG_FORMAT": "json",
    }


def proc_cpu(pids: list[int]) -> float:
    """User + system CPU of ``pids`` (those still running), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def backend_pids(db: TestDatabase) -> list[int]:
    """The PostgreSQL backends serving ``db`` (the service's inbox writers), if PostgreSQL."""
    if db.backend not in ("postgres", "postgresql"):
        return []
    with open_store(db.settings()) as store, store.system(write=False) as conn:
        rows = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        return [int(r) for r in rows]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its child processes (uvicorn workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        this, parent = int(stat.parent.name), int(fields[1])
        if this == pid or parent == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextmanager
def serving(db: TestDatabase, *, workers: int, log_level: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "cmis"), "serve", "--port", str(port), "--workers", str(workers)],
        env=environ(db, log_level),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("cmis serve did not start") from None
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(20)


def count(db: TestDatabase, **where: Any) -> int:
    with open_store(db.settings()) as store, store.system(write=False) as conn:
        query = select(func.count()).select_from(webhook_events)
        for name, value in where.items():
            query = query.where(webhook_events.c[name] == value)
        return int(conn.execute(query).scalar_one())


def throughput(
    db: TestDatabase,
    wrk: str,
    *,
    duration: int,
    connections: int,
    workers: int,
    log_level: str,
    profile: str | None = None,
) -> dict[str, Any]:
    before = count(db)
    with serving(db, workers=workers, log_level=log_level) as (base, pid):
        # a short warm-up (JIT of the Lua, connection pools), not counted
        subprocess.run(
            [
                wrk,
                "-t2",
                "-c8",
                "-d2s",
                "-s",
                str(HERE / "webhooks.lua"),
                f"{base}/webhooks/example",
                "--",
                SECRET,
                "warm",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        warm = count(db)
        pg_pids = backend_pids(db)
        load = os.getloadavg()
        pg_before = proc_cpu(pg_pids)
        wrk_before = children_cpu()
        cpu_before = cpu_seconds(pid)
        spy = (
            subprocess.Popen(
                [
                    str(VENV_BIN / "py-spy"),
                    "record",
                    "-p",
                    str(pid),
                    "-o",
                    profile,
                    "--format",
                    "raw",
                    "-d",
                    str(duration),
                    "-r",
                    "200",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if profile
            else None
        )
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "5s",
                "-s",
                str(HERE / "webhooks.lua"),
                f"{base}/webhooks/example",
                "--",
                SECRET,
                "run",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        cpu = cpu_seconds(pid) - cpu_before
        wrk_cpu = children_cpu() - wrk_before
        pg_cpu = proc_cpu(pg_pids) - pg_before
        if spy is not None:
            spy.wait(60)
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    stats = json.loads(line.removeprefix("WRK_JSON "))
    stored = count(db) - warm
    seconds = stats["duration_us"] / 1e6
    return {
        "warm_up_rows": warm - before,
        "requests": stats["requests"],
        "non_2xx": stats["non2xx"],
        "errors": stats["connect_errors"] + stats["read_errors"] + stats["timeouts"],
        "committed": stored,
        "committed_per_s": round(stored / seconds),
        "p50_ms": round(stats["p50_us"] / 1000, 2),
        "p90_ms": round(stats["p90_us"] / 1000, 2),
        "p99_ms": round(stats["p99_us"] / 1000, 2),
        "max_ms": round(stats["max_us"] / 1000, 1),
        "server_cpu_s": round(cpu, 1),
        "server_cpu_us_per_delivery": round(cpu / max(stored, 1) * 1e6),
        "server_cores": round(cpu / seconds, 2),
        "wrk_cpu_us_per_delivery": round(wrk_cpu / max(stored, 1) * 1e6),
        "postgres_backends_cpu_us_per_delivery": round(pg_cpu / max(stored, 1) * 1e6)
        if pg_pids
        else None,
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def add_route(db: TestDatabase) -> None:
    with open_store(db.settings()) as store:
        org = store.create_org("bench")
        with store.org(org.id) as conn:
            integration = conn.execute(
                insert(integrations)
                .values(org_id=org.id, platform="example", status="active")
                .returning(integrations.c.id)
            ).scalar_one()
            conn.execute(
                insert(routes).values(
                    org_id=org.id,
                    platform="example",
                    kind="ad_account",
                    external_id="act_1000",
                    integration_id=integration,
                )
            )


async def send_burst(base: str, total: int, concurrency: int) -> dict[str, int]:
    import httpx2
    from cmis_example.webhooks import SCHEME

    statuses: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in list(range(total)) + list(range(total)):  # every delivery, then every one again
        queue.put_nowait(n)

    async def worker(client: httpx2.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = json.dumps(
                {
                    "id": f"burst-{n}",
                    "type": "campaign.updated",
                    "account_id": "act_1000",
                    "object_id": f"cmp_{n % 50}",
                    "occurred_at": "2026-11-01T10:00:00+00:00",
                },
                separators=(",", ":"),
            ).encode()
            ts = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "x-example-timestamp": ts,
                "x-example-signature": SCHEME.sign(SECRET, body, timestamp=ts),
            }
            for _ in range(5):  # a platform retries what was not acknowledged
                answer = await client.post(
                    f"{base}/webhooks/example", content=body, headers=headers
                )
                if answer.status_code == 200:
                    key = answer.json()["status"]
                    break
                key = str(answer.status_code)
                await asyncio.sleep(0.5)
            statuses[key] = statuses.get(key, 0) + 1

    limits = httpx2.Limits(max_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


def burst(db: TestDatabase, *, total: int, workers: int, log_level: str) -> dict[str, Any]:
    add_route(db)
    before = count(db)
    started = time.perf_counter()
    with serving(db, workers=workers, log_level=log_level) as (base, _):
        statuses = asyncio.run(send_burst(base, total, 64))
    sent_s = time.perf_counter() - started
    stored = count(db) - before
    started = time.perf_counter()
    env = environ(db, log_level)
    procs = [
        subprocess.Popen(
            [str(VENV_BIN / "cmis"), "webhooks", "process", "--platform", "example", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    reports = [json.loads(p.communicate(timeout=900)[0]) for p in procs]
    processed_s = time.perf_counter() - started
    with open_store(db.settings()) as store, store.system(write=False) as conn:
        t = webhook_events.c
        burst_rows = t.dedupe_key.like("id:burst-%")
        states: dict[str, int] = dict(
            conn.execute(select(t.status, func.count()).where(burst_rows).group_by(t.status)).all()
        )
        max_attempts = conn.execute(select(func.max(t.attempts)).where(burst_rows)).scalar_one()
        distinct = conn.execute(
            select(func.count(func.distinct(t.dedupe_key))).where(burst_rows)
        ).scalar_one()
    return {
        "sent": total * 2,
        "answers": statuses,
        "stored_rows": stored,
        "distinct_keys": distinct,
        "send_seconds": round(sent_s, 1),
        "statuses": states,
        "max_attempts": max_attempts,
        "processors": [r["processed"] for r in reports],
        "process_seconds": round(processed_s, 1),
        "ok": stored == total
        and distinct == total
        and states == {"processed": total}
        and max_attempts == 1
        and sum(r["processed"] for r in reports) >= total,
    }


@contextmanager
def database(backend: str) -> Iterator[TestDatabase]:
    with tempfile.TemporaryDirectory() as home:
        if backend == "sqlite":
            db = sqlite_database_at(Path(home))
            open_store(db.settings()).close()  # migrate before the service starts
            yield db
            return
        with new_postgres_template() as template, new_postgres_database(template, Path(home)) as db:
            yield db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy the service during the run (collapsed stacks)"
    )
    args = parser.parse_args()
    wrk = find_wrk()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {}
    for backend in backends:
        with database(backend) as db:
            result = throughput(
                db,
                wrk,
                duration=args.duration,
                connections=args.connections,
                workers=args.workers,
                log_level=args.log_level,
                profile=args.profile and f"{args.profile}.{backend}",
            )
            print(backend, "throughput", json.dumps(result), flush=True)
            results[backend] = {"throughput": result}
        if not args.skip_burst:
            with database(backend) as db:
                outcome = burst(
                    db, total=args.burst, workers=args.workers, log_level=args.log_level
                )
                print(backend, "burst", json.dumps(outcome), flush=True)
                results[backend]["burst"] = outcome
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
