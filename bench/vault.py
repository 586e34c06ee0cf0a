"""Vault throughput: seal/open of a token set, and key rotation over a credentials table.

Rotation runs over a table shaped like the store's ``credentials`` (on SQLite in a temp
file, and on PostgreSQL when --postgres URL is given: a database is created and dropped).
Usage: python bench/vault.py [--rows 20000] [--batch-size 500] [--postgres URL]
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from cmis_core.logs import configure_logging
from cmis_core.types import TokenSet
from cmis_core.vault import SecretKey, Vault, rotate


def table_in(engine: sa.Engine) -> sa.Table:
    metadata = sa.MetaData()
    table = sa.Table(
        "credentials",
        metadata,
        sa.Column("org_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("integration_id", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "id"),
    )
    metadata.create_all(engine)
    return table


def sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def bench_rotation(engine: sa.Engine, rows: int, batch_size: int) -> float:
    old, new = SecretKey.generate(), SecretKey.generate()
    vault = Vault([old])
    table = table_in(engine)
    data = []
    for n in range(rows):
        sealed = vault.seal_tokens(TokenSet(access_token=f"t{n}"), org_id=1, integration_id=n)
        data.append(
            {
                "org_id": 1,
                "id": n,
                "integration_id": n,
                "key_id": sealed.key_id,
                "ciphertext": sealed.ciphertext,
                "version": 1,
            }
        )
    with engine.begin() as conn:
        conn.execute(table.insert(), data)
    start = time.perf_counter()
    report = rotate(engine.begin, table, Vault([new, old]), batch_size=batch_size)
    elapsed = time.perf_counter() - start
    assert report.rewritten == rows and report.complete
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--postgres",
        default=None,
        help="admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1/test",
    )
    opts = parser.parse_args()
    configure_logging(level="info")

    vault = Vault([SecretKey.generate()])
    tokens = TokenSet(access_token="a" * 200, refresh_token="r" * 100, scopes=("ads_read",))
    count = 20000
    start = time.perf_counter()
    for n in range(count):
        vault.open_tokens(
            vault.seal_tokens(tokens, org_id=1, integration_id=n), org_id=1, integration_id=n
        )
    per = (time.perf_counter() - start) / count * 1e6
    print(f"seal+open a token set: {per:.1f} us")

    with tempfile.TemporaryDirectory() as folder:
        engine = sqlite_engine(Path(folder) / "bench.db")
        rate = bench_rotation(engine, opts.rows, opts.batch_size)
        engine.dispose()
    print(f"rotate on SQLite: {rate:,.0f} rows/s ({opts.rows} rows, batches of {opts.batch_size})")

    if opts.postgres:
        name = f"cmis_bench_{secrets.token_hex(4)}"
        admin = sa.create_engine(opts.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            engine = sa.create_engine(sa.make_url(opts.postgres).set(database=name))
            rate = bench_rotation(engine, opts.rows, opts.batch_size)
            engine.dispose()
            print(f"rotate on PostgreSQL: {rate:,.0f} rows/s ({opts.rows} rows)")
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


if __name__ == "__main__":
    main()
