"""`cmis apikeys`: API keys of an organisation; a key is shown once, only its hash is kept."""

from __future__ import annotations

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode

org_option = click.option("--org", help="Organisation slug; default: CMIS_ORG.")


@click.group()
def apikeys() -> None:
    """API keys."""


@apikeys.command("create")
@org_option
@click.option("--name", help="A label for the key (who or what uses it).")
def create_key(org: str | None, name: str | None) -> int:
    """Create a key; it is printed once on stdout and never stored."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    settings = Settings.from_env()
    with open_store(settings) as store:
        found = store.get_org(settings.require_org(org))
        key_id, key = store.create_api_key(found.id, name)
    click.echo(
        f"created API key {key_id} for {found.slug}; store it now, it is not shown again", err=True
    )
    click.echo(key)
    return int(ExitCode.OK)


@apikeys.command("list")
@org_option
@json_option
def list_keys(org: str | None, as_json: bool) -> int:
    """The keys of an organisation (prefixes only), revoked ones included."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    settings = Settings.from_env()
    with open_store(settings) as store:
        found = store.get_org(settings.require_org(org))
        rows = [info.to_json() for info in store.list_api_keys(found.id)]
    emit(
        rows,
        as_json=as_json,
        columns=("id", "name", "prefix", "created_at", "last_used_at", "revoked_at"),
    )
    return int(ExitCode.OK)


@apikeys.command("revoke")
@click.argument("key_id", type=int)
def revoke_key(key_id: int) -> int:
    """Revoke key KEY_ID; requests with it are refused from now on."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    with open_store(Settings.from_env()) as store:
        store.revoke_api_key(key_id)
    click.echo(f"revoked API key {key_id}")
    return int(ExitCode.OK)
