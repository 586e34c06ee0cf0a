"""Bulk upsert throughput: 150,000 daily_metrics rows, fresh / unchanged / changed.

PostgreSQL: a fresh database and roles on CMIS_TEST_POSTGRES_URL's server (dropped at the
end), written as the application role with row-level security on and
``synchronous_commit`` on. SQLite: a file in a temporary folder (WAL, synchronous=NORMAL).

    python bench/upsert.py [--rows 150000] [--page-size 5000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from cmis_core.store import Store, open_store, tables
from cmis_core.testing.databases import (
    TestDatabase,
    new_postgres_database,
    new_postgres_template,
    sqlite_database_at,
)

KEY = ("platform", "level", "entity_external_id", "date")


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


def timed(label: str, count: int, run: Callable[[], Any]) -> dict[str, Any]:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    rate = count / seconds
    print(f"  {label:<18} {seconds:6.2f} s  {rate:9,.0f} rows/s  {result}")
    return {"label": label, "seconds": seconds, "rate": rate}


def run(database: TestDatabase, rows: int, page_size: int) -> None:
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

        def write(batch: list[dict[str, Any]]) -> Callable[[], Any]:
            return lambda: store.upsert(
                org.id, tables.daily_metrics, batch, KEY, page_size=page_size
            )

        timed("fresh insert", rows, write(fresh))
        timed("unchanged re-upsert", rows, write(fresh))
        timed("changed re-upsert", rows, write(changed))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    print(f"{args.rows:,} daily_metrics rows, pages of {args.page_size:,} rows")
    if args.backend in ("postgres", "both"):
        print("PostgreSQL (application role, RLS forced)")
        with (
            tempfile.TemporaryDirectory() as home,
            new_postgres_template() as template,
            new_postgres_database(template, Path(home)) as database,
        ):
            run(database, args.rows, args.page_size)
    if args.backend in ("sqlite", "both"):
        print("SQLite (WAL)")
        with tempfile.TemporaryDirectory() as home:
            run(sqlite_database_at(Path(home)), args.rows, args.page_size)


if __name__ == "__main__":
    main()
