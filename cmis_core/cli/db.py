"""`cmis db`: bring the database schema up to date, or show where it is."""

from __future__ import annotations

from pathlib import Path

import click

from cmis_core.errors import ExitCode


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def upgrade_command() -> int:
    """Run pending migrations as the table owner (CMIS_DATABASE_MIGRATION_URL).

    On PostgreSQL, also creates the application role (CMIS_DATABASE_APP_ROLE) when it does
    not exist and grants it what it needs; it owns nothing.
    """
    from cmis_core.settings import Settings
    from cmis_core.store.schema import upgrade

    result = upgrade(Settings.from_env())
    if result.before == result.after:
        click.echo(f"database already at revision {result.after}")
    else:
        click.echo(f"database upgraded from {result.before or '(empty)'} to {result.after}")
    if result.app_role:
        click.echo(f"application role {result.app_role}: granted, owns nothing")
    return int(ExitCode.OK)


@db.command("current")
@click.option("--check", is_flag=True, help="Exit 1 when the schema is not up to date.")
def current_command(check: bool) -> int:
    """Show the schema revision of the database (CMIS_DATABASE_URL) and the one expected."""
    from cmis_core.settings import Settings
    from cmis_core.store.engine import make_engine, parse_url
    from cmis_core.store.errors import connect
    from cmis_core.store.schema import current_revision, head_revision

    settings = Settings.from_env()
    url = parse_url(settings.database_url)
    current: str | None = None
    missing_file = (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not Path(str(url.database)).expanduser().exists()
    )
    if not missing_file:
        engine = make_engine(url, pool_size=1)
        try:
            with connect(engine, "CMIS_DATABASE_URL") as conn:
                current = current_revision(conn)
        finally:
            engine.dispose()
    head = head_revision()
    click.echo(f"current: {current or '(none)'}")
    click.echo(f"head:    {head}")
    if current == head:
        click.echo("up to date")
        return int(ExitCode.OK)
    click.echo("out of date: run `cmis db upgrade`")
    return int(ExitCode.PARTIAL if check else ExitCode.OK)
