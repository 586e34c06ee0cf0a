"""Fresh databases for tests: opt in with ``pytest_plugins = ["cmis_core.testing.databases"]``.

Fixtures:

- ``sqlite_database``: a new SQLite database under ``tmp_path``.
- ``postgres_database``: a new PostgreSQL database with a random name, migrated by a
  random table-owner role, used through a random application role (``url``); copied from
  a template migrated once per session. Everything, roles included, is dropped at the end.
- ``database``: parametrized over both backends, restricted by ``CMIS_TEST_BACKENDS``
  (``sqlite,postgres`` by default).
- ``store``: an open :class:`~cmis_core.store.Store` on ``database``.

The PostgreSQL server is reached with the admin URL ``CMIS_TEST_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), which must be allowed to
create databases and roles. The same helpers, as context managers, serve bench scripts.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from cmis_core.settings import Settings

if TYPE_CHECKING:
    from cmis_core.store import Store

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgres")


def admin_url() -> str:
    """``CMIS_TEST_POSTGRES_URL`` or the default local server."""
    return os.environ.get("CMIS_TEST_POSTGRES_URL") or ADMIN_URL


def selected_backends() -> tuple[str, ...]:
    """The backends ``CMIS_TEST_BACKENDS`` asks for (default: both)."""
    raw = os.environ.get("CMIS_TEST_BACKENDS") or ",".join(BACKENDS)
    chosen = tuple(b.strip() for b in raw.split(",") if b.strip())
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown:
        raise ValueError(f"CMIS_TEST_BACKENDS: unknown backend {unknown[0]!r}")
    return chosen


@attrs.frozen(kw_only=True)
class TestDatabase:
    """A database made for one test: the URLs and role to hand to :class:`Settings`."""

    __test__ = False  # not a test class

    backend: str
    url: str = attrs.field(repr=False)
    migration_url: str = attrs.field(repr=False)
    app_role: str
    home: Path
    name: str

    def environ(self) -> dict[str, str]:
        """The CMIS_* variables that point cmis at this database."""
        return {
            "CMIS_HOME": str(self.home),
            "CMIS_DATABASE_URL": self.url,
            "CMIS_DATABASE_MIGRATION_URL": self.migration_url,
            "CMIS_DATABASE_APP_ROLE": self.app_role,
        }

    def settings(self, **extra: str) -> Settings:
        """Settings for this database (``extra`` adds or overrides variables)."""
        return Settings.from_env({**self.environ(), **extra})


@attrs.frozen(kw_only=True)
class PostgresTemplate:
    """A migrated template database and its two roles, made once per session."""

    admin_url: URL = attrs.field(repr=False)
    name: str
    owner: str
    owner_password: str = attrs.field(repr=False)
    app_role: str
    app_password: str = attrs.field(repr=False)

    def url(self, database: str, *, owner: bool = False) -> str:
        """The URL of ``database`` as the owner or the application role."""
        user, password = (
            (self.owner, self.owner_password) if owner else (self.app_role, self.app_password)
        )
        return self.admin_url.set(
            username=user, password=password, database=database
        ).render_as_string(hide_password=False)


@contextmanager
def new_postgres_template(url: str | None = None) -> Iterator[PostgresTemplate]:
    """Create owner and app roles and a migrated template database; drop all at exit."""
    from cmis_core.store.schema import upgrade

    admin = make_url(url or admin_url())
    suffix = secrets.token_hex(4)
    template = PostgresTemplate(
        admin_url=admin,
        name=f"cmis_tmpl_{suffix}",
        owner=f"cmis_owner_{suffix}",
        owner_password=secrets.token_hex(16),
        app_role=f"cmis_app_{suffix}",
        app_password=secrets.token_hex(16),
    )
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE ROLE {template.owner} LOGIN CREATEROLE "
                f"PASSWORD '{template.owner_password}'"
            )
            conn.exec_driver_sql(f"CREATE DATABASE {template.name} OWNER {template.owner}")
        with tempfile.TemporaryDirectory() as home:
            upgrade(
                Settings.from_env(
                    {
                        "CMIS_HOME": home,
                        "CMIS_DATABASE_URL": template.url(template.name),
                        "CMIS_DATABASE_MIGRATION_URL": template.url(template.name, owner=True),
                        "CMIS_DATABASE_APP_ROLE": template.app_role,
                    }
                )
            )
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f"ALTER ROLE {template.app_role} PASSWORD '{template.app_password}'"
            )
        yield template
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {template.name} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {template.app_role}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {template.owner}")
        engine.dispose()


@contextmanager
def new_postgres_database(template: PostgresTemplate, home: Path) -> Iterator[TestDatabase]:
    """A new database copied from ``template``; dropped at exit."""
    name = f"cmis_test_{secrets.token_hex(6)}"
    engine = create_engine(template.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {name} TEMPLATE {template.name} OWNER {template.owner}"
            )
        yield TestDatabase(
            backend="postgresql",
            url=template.url(name),
            migration_url=template.url(name, owner=True),
            app_role=template.app_role,
            home=home,
            name=name,
        )
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


def sqlite_database_at(home: Path) -> TestDatabase:
    """A SQLite database in ``home`` (created and migrated on first use)."""
    url = f"sqlite:///{home / 'cmis.db'}"
    return TestDatabase(
        backend="sqlite", url=url, migration_url=url, app_role="cmis_app", home=home, name="cmis.db"
    )


# --- pytest fixtures


@pytest.fixture(scope="session")
def cmis_postgres_template() -> Iterator[PostgresTemplate]:
    """Session-wide: roles and a migrated template database on the test server."""
    if "postgres" not in selected_backends():
        pytest.skip("PostgreSQL is not in CMIS_TEST_BACKENDS")
    with new_postgres_template() as template:
        yield template


@pytest.fixture
def sqlite_database(tmp_path: Path) -> TestDatabase:
    """A fresh SQLite database."""
    if "sqlite" not in selected_backends():
        pytest.skip("SQLite is not in CMIS_TEST_BACKENDS")
    return sqlite_database_at(tmp_path)


@pytest.fixture
def postgres_database(
    cmis_postgres_template: PostgresTemplate, tmp_path: Path
) -> Iterator[TestDatabase]:
    """A fresh, migrated PostgreSQL database; ``url`` connects as the application role."""
    with new_postgres_database(cmis_postgres_template, tmp_path) as database:
        yield database


@pytest.fixture(
    params=[
        pytest.param(b, marks=[pytest.mark.postgres] if b == "postgres" else [])
        for b in selected_backends()
    ]
)
def database(request: pytest.FixtureRequest) -> TestDatabase:
    """A fresh database on each backend of CMIS_TEST_BACKENDS."""
    value: TestDatabase = request.getfixturevalue(f"{request.param}_database")
    return value


@pytest.fixture
def store(database: TestDatabase) -> Iterator[Store]:
    """An open store on ``database``, closed at the end of the test."""
    from cmis_core.store import open_store

    opened = open_store(database.settings())
    try:
        yield opened
    finally:
        opened.close()
