"""Schema versions: run the alembic migrations, read the current revision, refuse an old one.

`cmis db upgrade` calls :func:`upgrade`, which connects with CMIS_DATABASE_MIGRATION_URL
(the table owner), runs every pending migration in one transaction and, on PostgreSQL,
creates the application role (CMIS_DATABASE_APP_ROLE) when it does not exist and grants
it what it needs, and nothing more.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import attrs
from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from alembic.config import Config

from cmis_core.errors import ConfigurationError, SchemaOutOfDate
from cmis_core.settings import Settings
from cmis_core.store import grants
from cmis_core.store.engine import make_engine, parse_url
from cmis_core.store.errors import connect

SCRIPT_LOCATION = "cmis_core.store:migrations"
_UPGRADE_LOCK = 0x636D6973  # "cmis": serialises concurrent upgrades on PostgreSQL
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic logs every step at INFO; cmis reports the outcome itself."""
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for the cmis migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The revision this cmis expects."""
    with _quiet_alembic():
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or ``None`` when it has no cmis schema."""
    if conn.dialect.name == "postgresql":
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
    else:
        exists = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        ).scalar()
    if exists is None:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def check_revision(current: str | None) -> None:
    """Raise :class:`SchemaOutOfDate` unless ``current`` is the head revision."""
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDate("the database has no cmis schema", hint="run `cmis db upgrade`")
    with _quiet_alembic():
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
        known = {script.revision for script in scripts}
    if current not in known:
        raise SchemaOutOfDate(
            f"the database schema (revision {current}) is newer than this cmis ({head})",
            hint="upgrade cmis-core",
        )
    raise SchemaOutOfDate(
        f"the database schema is at revision {current}, this cmis needs {head}",
        hint="run `cmis db upgrade`",
    )


def check_role_name(role: str) -> str:
    """``role`` if it is a plain lower-case PostgreSQL identifier."""
    if not _ROLE.match(role):
        raise ConfigurationError(
            f"CMIS_DATABASE_APP_ROLE must be a lower-case identifier, got {role!r}"
        )
    return role


@attrs.frozen(kw_only=True)
class UpgradeResult:
    """What `cmis db upgrade` did."""

    backend: str
    before: str | None
    after: str
    app_role: str | None


def migrate(conn: Connection) -> str | None:
    """Run pending migrations on ``conn`` (inside its open transaction); the old revision."""
    before = current_revision(conn)
    if before != head_revision():
        with _quiet_alembic():
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
    return before


def upgrade(settings: Settings) -> UpgradeResult:
    """Bring the database to the head revision as the table owner; set up the app role."""
    url = parse_url(settings.migration_url, variable="CMIS_DATABASE_MIGRATION_URL")
    backend = url.get_backend_name()
    role = check_role_name(settings.app_role) if backend == "postgresql" else None
    if backend == "sqlite":
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url, pool_size=1, variable="CMIS_DATABASE_MIGRATION_URL")
    try:
        with connect(engine, "CMIS_DATABASE_MIGRATION_URL") as conn:
            with conn.begin():
                if role is not None:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})
                before = migrate(conn)
                if role is not None:
                    grants.grant_app_role(conn, role)
            return UpgradeResult(
                backend=backend, before=before, after=head_revision(), app_role=role
            )
    finally:
        engine.dispose()
