"""`cmis orgs`: the organisations (tenants) of this database."""

from __future__ import annotations

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode


@click.group()
def orgs() -> None:
    """Organisations."""


@orgs.command("create")
@click.argument("name")
@click.option("--display-name", help="Human name; default: NAME.")
def create_org(name: str, display_name: str | None) -> int:
    """Create organisation NAME (its slug: lower-case letters, digits, hyphens)."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    with open_store(Settings.from_env()) as store:
        org = store.create_org(name, display_name)
    click.echo(f"created organisation {org.slug} (id {org.id})")
    return int(ExitCode.OK)


@orgs.command("list")
@json_option
def list_orgs(as_json: bool) -> int:
    """Every organisation."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    with open_store(Settings.from_env()) as store:
        rows = [org.to_json() for org in store.list_orgs()]
    emit(rows, as_json=as_json, columns=("id", "slug", "name", "created_at"))
    return int(ExitCode.OK)
