"""The store: open it from Settings, then work inside org or system transactions.

An *org transaction* (:meth:`Store.org`) is a SQLAlchemy Core connection inside a
transaction bound to one organisation: on PostgreSQL it starts with
``set_config('cmis.org_id', id, true)``, so row-level security shows and accepts that
organisation's rows only, and the setting ends with the transaction. On SQLite nothing in
the database enforces isolation: the store layer adds the filter (:func:`scoped`,
:func:`~cmis_core.store.bulk.upsert`). A *system transaction* (:meth:`Store.system`)
has no organisation: system tables only (on PostgreSQL, tenant tables look empty).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, select, text

from cmis_core.errors import ConfigurationError, UsageError
from cmis_core.settings import Settings
from cmis_core.store import apikeys, crossorg, orgs
from cmis_core.store.bulk import DEFAULT_PAGE_SIZE, upsert
from cmis_core.store.engine import make_engine, parse_url
from cmis_core.store.errors import connect
from cmis_core.store.records import ApiKeyInfo, DueIntegration, Org, RouteTarget, UpsertResult
from cmis_core.store.schema import check_revision, current_revision, head_revision, migrate

ORG_KEY = "cmis.org_id"
_VAR = "CMIS_DATABASE_URL"


def current_org_id(conn: Connection) -> int:
    """The organisation of the org transaction ``conn`` belongs to."""
    org_id = conn.info.get(ORG_KEY)
    if org_id is None:
        raise UsageError("this needs an org transaction (Store.org(org_id))")
    return int(org_id)


def scoped(conn: Connection, table: Table) -> Select[Any]:
    """``SELECT * FROM table`` limited to the organisation of ``conn`` (on every backend)."""
    return select(table).where(table.c.org_id == current_org_id(conn))


def check_org_id(org_id: object) -> int:
    """``org_id`` if it is a positive integer id."""
    if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
        raise UsageError(f"an organisation id is a positive integer, got {org_id!r}")
    return org_id


class Store:
    """The database of cmis, for one process. Open with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend: str = engine.dialect.name

    def __repr__(self) -> str:
        return f"<Store {self.backend}>"

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        with connect(self.engine, _VAR) as conn:
            if not self.is_postgres:
                conn.execution_options(cmis_write=write)  # BEGIN IMMEDIATE for writers
            with conn.begin():
                if self.is_postgres and not write:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn

    @contextmanager
    def org(self, org_id: int, *, write: bool = True) -> Iterator[Connection]:
        """A transaction bound to organisation ``org_id``; commits on success.

        ``write=False`` opens a read-only transaction on PostgreSQL and a deferred one
        on SQLite (writers take ``BEGIN IMMEDIATE`` so they never deadlock on upgrade).
        """
        org_id = check_org_id(org_id)
        with self._transaction(write) as conn:
            if self.is_postgres:
                # is_local=true: the setting ends with this transaction, on commit or rollback
                conn.execute(
                    text("SELECT set_config('cmis.org_id', :org, true)"), {"org": str(org_id)}
                )
            conn.info[ORG_KEY] = org_id
            try:
                yield conn
            finally:
                conn.info.pop(ORG_KEY, None)

    @contextmanager
    def system(self, *, write: bool = True) -> Iterator[Connection]:
        """A transaction with no organisation, for the system tables; commits on success."""
        with self._transaction(write) as conn:
            yield conn

    # --- bulk writes

    def upsert(
        self,
        org_id: int,
        table: Table,
        rows: Iterable[Mapping[str, Any]],
        key: Sequence[str],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> UpsertResult:
        """Upsert ``rows`` for ``org_id``, one transaction per page of ``page_size`` rows."""
        result = UpsertResult()
        page: list[Mapping[str, Any]] = []

        def flush() -> None:
            nonlocal result
            with self.org(org_id) as conn:
                result += upsert(conn, table, page, key)
            page.clear()

        for row in rows:
            page.append(row)
            if len(page) >= page_size:
                flush()
        if page:
            flush()
        return result

    # --- organisations and API keys (system tables)

    def create_org(self, slug: str, name: str | None = None) -> Org:
        """Create an organisation; its slug must be new (see :func:`orgs.check_slug`)."""
        with self.system() as conn:
            return orgs.create_org(conn, slug, name)

    def get_org(self, slug: str) -> Org:
        """The organisation ``slug``; :class:`UnknownOrganization` when there is none."""
        with self.system(write=False) as conn:
            return orgs.get_org(conn, slug)

    def list_orgs(self) -> list[Org]:
        """Every organisation, by slug."""
        with self.system(write=False) as conn:
            return orgs.list_orgs(conn)

    def create_api_key(self, org_id: int, name: str | None = None) -> tuple[int, str]:
        """A new API key of ``org_id``: ``(id, key)``. The key is shown once, never stored."""
        with self.system() as conn:
            return apikeys.create_api_key(conn, check_org_id(org_id), name)

    def verify_api_key(self, key: str) -> int | None:
        """The organisation id of a valid, unrevoked ``key``; ``None`` otherwise."""
        with self.system(write=False) as conn:
            found = apikeys.find_api_key(conn, key)
        if found is None:
            return None
        key_id, org_id, last_used_at = found
        now = dt.datetime.now(dt.UTC)
        if apikeys.needs_touch(last_used_at, now):
            with self.system() as conn:
                apikeys.touch_api_key(conn, key_id, now)
        return org_id

    def revoke_api_key(self, key_id: int) -> None:
        """Revoke API key ``key_id`` (idempotent); :class:`UsageError` if there is none."""
        with self.system() as conn:
            apikeys.revoke_api_key(conn, key_id)

    def list_api_keys(self, org_id: int) -> list[ApiKeyInfo]:
        """The API keys of ``org_id``, revoked ones included."""
        with self.system(write=False) as conn:
            return apikeys.list_api_keys(conn, check_org_id(org_id))

    # --- cross-organisation reads (SECURITY DEFINER functions on PostgreSQL)

    def due_integrations(
        self, now: dt.datetime, *, refresh_ahead: dt.timedelta = dt.timedelta(minutes=10)
    ) -> list[DueIntegration]:
        """Active integrations, across organisations, with a sync or a token refresh due."""
        with self.system(write=False) as conn:
            return crossorg.due_integrations(conn, now, now + refresh_ahead)

    def route(self, platform: str, kind: str, external_id: str) -> RouteTarget | None:
        """The organisation and integration a webhook about ``external_id`` belongs to."""
        with self.system(write=False) as conn:
            return crossorg.route(conn, platform, kind, external_id)


def open_store(settings: Settings) -> Store:
    """Open the database of ``settings``.

    SQLite: creates the folder and migrates on first use. PostgreSQL: refuses a schema
    that is not at this cmis's revision (:class:`SchemaOutOfDate`: run `cmis db upgrade`)
    and a connection whose role could read past row-level security (owner, superuser or
    BYPASSRLS). An unreachable database is a :class:`ConfigurationError`.
    """
    url = parse_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        try:
            _migrate_sqlite(engine)
        except BaseException:
            engine.dispose()
            raise
        return Store(engine)
    engine = make_engine(url, pool_size=settings.database_pool_size)
    try:
        with connect(engine, _VAR) as conn:
            check_revision(current_revision(conn))
            _check_role(conn)
            conn.rollback()
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


def _migrate_sqlite(engine: Engine) -> None:
    with connect(engine, _VAR) as conn:
        conn.execution_options(cmis_write=False)
        with conn.begin():
            current = current_revision(conn)
        if current == head_revision():
            return
        conn.execution_options(cmis_write=True)
        with conn.begin():  # BEGIN IMMEDIATE: one process migrates, the others wait
            migrate(conn)
        check_revision(current_revision(conn))


def _check_role(conn: Connection) -> None:
    row = conn.execute(
        text(
            "SELECT current_user AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypass,"
            " EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'daily_metrics'"
            "   AND c.relnamespace = current_schema()::regnamespace"
            "   AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owner"
            " FROM pg_roles r WHERE r.rolname = current_user"
        )
    ).one()
    why = (
        "is a superuser"
        if row.superuser
        else "has BYPASSRLS"
        if row.bypass
        else "owns the tables"
        if row.owner
        else None
    )
    if why is not None:
        raise ConfigurationError(
            f"CMIS_DATABASE_URL connects as role {row.role!r}, which {why}: "
            "organisations would not be kept apart",
            hint="connect as the application role (CMIS_DATABASE_APP_ROLE, "
            "created by `cmis db upgrade`); keep the owner for CMIS_DATABASE_MIGRATION_URL",
        )
