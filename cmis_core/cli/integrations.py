"""`cmis integrations list`: what each organisation has connected. Never a token."""

from __future__ import annotations

from typing import Any

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode


@click.group()
def integrations() -> None:
    """Connected platforms."""


@integrations.command("list")
@click.option("--org", help="Only this organisation (default: CMIS_ORG, else all).")
@json_option
def list_integrations(org: str | None, as_json: bool) -> int:
    """Org, platform, account, status, scopes, token expiry and last sync of each integration."""
    from cmis_core.auth import integrations as rows
    from cmis_core.cli.connect import expires_in
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    settings = Settings.from_env()
    slug = org or settings.org
    out: list[dict[str, Any]] = []
    with open_store(settings) as store:
        orgs = [store.get_org(slug)] if slug else store.list_orgs()
        for found in orgs:
            with store.org(found.id, write=False) as conn:
                for info in rows.list_all(conn):
                    row = {"org": found.slug, **info.to_json()}
                    row["expires_in"] = expires_in(info.access_expires_at)
                    row["last_sync"] = row["last_sync_at"] or "never"
                    out.append(row)
    emit(
        out,
        as_json=as_json,
        columns=("org", "platform", "account", "status", "scopes", "expires_in", "last_sync"),
    )
    return int(ExitCode.OK)


@integrations.command("refresh")
@click.argument("platform")
@click.option("--org", help="Organisation slug (default: CMIS_ORG).")
def refresh(platform: str, org: str | None) -> int:
    """Refresh PLATFORM's token now (exit 77 when the grant is gone: reconnect)."""
    import asyncio

    from cmis_core.auth.tokens import new_http_client, refresh_now
    from cmis_core.cli.connect import expires_in, opened

    with opened(org) as ctx:

        async def run() -> Any:
            async with new_http_client(ctx.settings) as http:
                return await refresh_now(*ctx.args(), ctx.org.id, platform, http=http)

        tokens = asyncio.run(run())
    click.echo(
        f"refreshed {platform} for {ctx.org.slug}; token expires: {expires_in(tokens.expires_at)}"
    )
    return int(ExitCode.OK)
