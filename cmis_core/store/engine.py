"""Engines for SQLite and PostgreSQL, configured the one way cmis needs them.

SQLite: WAL, a busy timeout, foreign keys on, and pysqlite's own transaction handling
turned off (``isolation_level = None``) so that cmis emits ``BEGIN`` itself:
``BEGIN IMMEDIATE`` for a writer (execution option ``cmis_write=True``), a deferred
``BEGIN`` for a reader. PostgreSQL: psycopg 3, a sized pool, pre-ping.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from cmis_core.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000

json_dumps = functools.partial(json.dumps, sort_keys=True, separators=(",", ":"), default=str)


def parse_url(url: str, *, variable: str = "CMIS_DATABASE_URL") -> URL:
    """Parse a database URL; ``postgres://`` and ``postgresql://`` mean psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"{variable} is not a database URL") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"{variable} must be a sqlite:// or postgresql:// URL, got {parsed.drivername}://"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        raise ConfigurationError(
            f"{variable} must use psycopg 3 (postgresql+psycopg://), got {parsed.drivername}://"
        )
    return parsed


def describe(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def make_engine(
    url: str | URL, *, pool_size: int = 5, variable: str = "CMIS_DATABASE_URL"
) -> Engine:
    """An engine for ``url`` with cmis's SQLite or PostgreSQL settings."""
    parsed = url if isinstance(url, URL) else parse_url(url, variable=variable)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(
                parsed,
                connect_args={"check_same_thread": False},
                json_serializer=json_dumps,
            )
            _configure_sqlite(engine)
            return engine
        return create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            json_serializer=json_dumps,
        )
    except (ModuleNotFoundError, NoSuchModuleError):
        raise ConfigurationError(
            f"{variable}: the PostgreSQL driver is not installed",
            hint="pip install 'cmis-core[postgres]'",
        ) from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("cmis_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
