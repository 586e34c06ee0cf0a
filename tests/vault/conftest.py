"""Fixtures for the vault tests: keys, and credentials-shaped tables on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cmis_core.vault import SecretKey

POSTGRES_URL = os.environ.get(
    "CMIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def credentials_table(metadata: sa.MetaData) -> sa.Table:
    """A table shaped like the store's ``credentials`` table."""
    return sa.Table(
        "credentials",
        metadata,
        sa.Column("org_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("integration_id", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False, default=1),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("org_id", "id"),
        sa.UniqueConstraint("org_id", "integration_id"),
    )


def sqlite_engine(path: Path) -> sa.Engine:
    """A SQLite engine as cmis uses it: WAL, a busy timeout, BEGIN IMMEDIATE for writers."""
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@pytest.fixture
def key_a() -> SecretKey:
    return SecretKey.generate()


@pytest.fixture
def key_b() -> SecretKey:
    return SecretKey.generate()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    if "postgres" not in os.environ.get("CMIS_TEST_BACKENDS", "sqlite,postgres").split(","):
        pytest.skip("postgres is not in CMIS_TEST_BACKENDS")
    name = f"cmis_vault_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:  # pragma: no cover - no server
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on SQLite (a file) or on a fresh PostgreSQL database."""
    backends = os.environ.get("CMIS_TEST_BACKENDS", "sqlite,postgres").split(",")
    if request.param not in backends:
        pytest.skip(f"{request.param} is not in CMIS_TEST_BACKENDS")
    if request.param == "sqlite":
        eng = sqlite_engine(tmp_path / "cmis.db")
    else:
        eng = sa.create_engine(request.getfixturevalue("postgres_url"))
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def make_table() -> Callable[[sa.Engine], sa.Table]:
    """Creates the credentials-shaped table on an engine and returns it."""

    def make(engine: sa.Engine) -> sa.Table:
        metadata = sa.MetaData()
        table = credentials_table(metadata)
        metadata.create_all(engine)
        return table

    return make
