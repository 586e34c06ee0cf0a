"""The PostgreSQL application role: created when missing, granted what it needs, owning nothing.

Run by `cmis db upgrade` as the table owner after the migrations, every time (the grants
are idempotent), so a role that was dropped or renamed in CMIS_DATABASE_APP_ROLE is set
up again.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from cmis_core.errors import ConfigurationError
from cmis_core.store.tables import TENANT_TABLES

# table -> privileges of the application role; tenant tables get full DML under RLS.
SYSTEM_PRIVILEGES: dict[str, str] = {
    "organizations": "SELECT, INSERT, UPDATE",
    "api_keys": "SELECT, INSERT, UPDATE",
    "oauth_states": "SELECT, INSERT, UPDATE, DELETE",
    "webhook_events": "SELECT, INSERT, UPDATE, DELETE",
    "leases": "SELECT, INSERT, UPDATE, DELETE",
    "alembic_version": "SELECT",
}
TENANT_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
FUNCTIONS = (
    "cmis_due_integrations(timestamptz, timestamptz)",
    "cmis_route(varchar, varchar, varchar)",
)


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def grant_app_role(conn: Connection, role: str) -> None:
    """Create ``role`` if missing (LOGIN, no other attribute) and grant it its privileges."""
    me = conn.execute(text("SELECT current_user")).scalar_one()
    if me == role:
        raise ConfigurationError(
            f"CMIS_DATABASE_MIGRATION_URL connects as the application role {role!r}",
            hint="migrate as the table owner; the application role must own nothing",
        )
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    q = _quote(conn, role)
    if exists is None:
        conn.exec_driver_sql(
            f"CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"
        )
    owned = conn.execute(
        text(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = :r AND c.relnamespace = current_schema()::regnamespace"
        ),
        {"r": role},
    ).scalar_one()
    if owned:
        raise ConfigurationError(
            f"the application role {role!r} owns {owned} relations; it must own nothing",
            hint="reassign them to the migration role (REASSIGN OWNED BY ...)",
        )
    database = _quote(conn, conn.execute(text("SELECT current_database()")).scalar_one())
    schema = _quote(conn, conn.execute(text("SELECT current_schema()")).scalar_one())
    conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {q}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {q}")
    for table, privileges in SYSTEM_PRIVILEGES.items():
        conn.exec_driver_sql(f"GRANT {privileges} ON {schema}.{table} TO {q}")
    for tenant in TENANT_TABLES:
        conn.exec_driver_sql(f"GRANT {TENANT_PRIVILEGES} ON {schema}.{tenant.name} TO {q}")
    for function in FUNCTIONS:
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {schema}.{function} TO {q}")
