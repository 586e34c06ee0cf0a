"""Bulk upsert throughput: 150,000 daily_metrics rows, fresh / unchanged / changed.

PostgreSQL: a fresh database and roles on CMIS_TEST_POSTGRES_URL's server (dropped at the
end), written as the application role with row-level security on and
``synchronous_commit`` on. SQLite: a file in a temporary folder (WAL, synchronous=NORMAL).
Each run uses a new database; ``--runs`` repeats the three phases and prints every run, then
the best and the median. Besides the elapsed time, the CPU time of this process (client)
and, when the server is on this machine, of the PostgreSQL backends serving the run
(``/proc``), and the load average: the machine is shared.

    python bench/upsert.py [--rows 150000] [--page-size 5000] [--runs 3]
                           [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from cmis_core.store import Store, open_store, tables
from cmis_core.store.bulk import DEFAULT_PAGE_SIZE
from cmis_core.testing.databases import (
    TestDatabase,
    new_postgres_database,
    new_postgres_template,
    sqlite_database_at,
)

KEY = ("platform", "level", "entity_external_id", "date")
PHASES = ("fresh insert", "unchanged re-upsert", "changed re-upsert")
_TICK = os.sysconf("SC_CLK_TCK")


def make_rows(count: int, *, changed: bool = False) -> list[dict[str, Any]]:
    days = 30
    start = dt.date(2024, 1, 1)
    rows = []
    for i in range(count):
        entity, day = divmod(i, days)
        bump = 1 if changed and i % 2 == 0 else 0  # half the rows change
        rows.append(
            {
                "platform": "meta",
                "level": "ad",
                "entity_external_id": f"2384{entity:010d}",
                "date": start + dt.timedelta(days=day),
                "account_external_id": f"act_{entity % 20}",
                "currency": "EUR",
                "impressions": 1000 + i,
                "clicks": 10 + i % 97 + bump,
                "spend_micros": 12_340_000 + i,
                "conversions": decimal.Decimal(i % 13) / 4,
                "conversions_value_micros": 5_000_000 + i,
                "attribution": "7d_click,1d_view",
            }
        )
    return rows


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (``None`` when /proc does not show it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class ServerCpu:
    """CPU time of the PostgreSQL backends connected to the bench database."""

    def __init__(self, store: Store):
        self.store = store

    def sample(self) -> dict[int, float] | None:
        if not self.store.is_postgres:
            return None
        with self.store.system(write=False) as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
            cpu = {int(pid): process_cpu(int(pid)) for pid in pids}
        if any(v is None for v in cpu.values()):
            return None
        return {pid: v for pid, v in cpu.items() if v is not None}

    @staticmethod
    def spent(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
        if before is None or after is None:
            return None
        return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def timed(label: str, count: int, server: ServerCpu, run: Callable[[], Any]) -> dict[str, Any]:
    cpu_before = server.sample()
    client_before = time.process_time()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    client = time.process_time() - client_before
    spent = server.spent(cpu_before, server.sample())
    load = os.getloadavg()[0]
    rate = count / seconds
    server_text = f"server {spent:5.2f} s" if spent is not None else "server    n/a"
    print(
        f"  {label:<20} {seconds:6.2f} s {rate:9,.0f} rows/s  client {client:5.2f} s  "
        f"{server_text}  load {load:4.1f}  {result}",
        flush=True,
    )
    return {"label": label, "seconds": seconds, "rate": rate, "load": load}


def run(database: TestDatabase, rows: int, page_size: int) -> list[dict[str, Any]]:
    store: Store = open_store(database.settings())
    try:
        org = store.create_org("bench")
        if store.is_postgres:
            with store.system(write=False) as conn:
                info = conn.execute(
                    text(
                        "SELECT current_user, current_setting('synchronous_commit'),"
                        " r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user"
                    )
                ).one()
            print(
                f"  as {info[0]}: synchronous_commit={info[1]},"
                f" superuser={info[2]}, bypassrls={info[3]}"
            )
        fresh, changed = make_rows(rows), make_rows(rows, changed=True)
        server = ServerCpu(store)

        def write(batch: list[dict[str, Any]]) -> Callable[[], Any]:
            return lambda: store.upsert(
                org.id, tables.daily_metrics, batch, KEY, page_size=page_size
            )

        return [
            timed(label, rows, server, write(batch))
            for label, batch in zip(PHASES, (fresh, fresh, changed), strict=True)
        ]
    finally:
        store.close()


def summary(results: list[list[dict[str, Any]]]) -> None:
    if len(results) < 2:
        return
    for i, label in enumerate(PHASES):
        rates = [r[i]["rate"] for r in results]
        print(
            f"  {label:<20} best {max(rates):9,.0f} rows/s  median {statistics.median(rates):9,.0f}"
            f" rows/s  ({len(rates)} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    print(
        f"{args.rows:,} daily_metrics rows, pages of {args.page_size:,} rows, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    if args.backend in ("postgres", "both"):
        print("PostgreSQL (application role, RLS forced)")
        results = []
        with tempfile.TemporaryDirectory() as home, new_postgres_template() as template:
            for _ in range(args.runs):
                with new_postgres_database(template, Path(home)) as database:
                    results.append(run(database, args.rows, args.page_size))
        summary(results)
    if args.backend in ("sqlite", "both"):
        print("SQLite (WAL)")
        results = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as home:
                results.append(run(sqlite_database_at(Path(home)), args.rows, args.page_size))
        summary(results)


if __name__ == "__main__":
    main()
