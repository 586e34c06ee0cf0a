"""`cmis accounts`: which ad accounts sync reads (an agency token can see hundreds)."""

from __future__ import annotations

from typing import Any

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode, UsageError

COLUMNS = ("platform", "external_id", "name", "currency", "time_zone", "status", "sync_enabled")


@click.group()
def accounts() -> None:
    """Ad accounts found by sync, and whether sync reads them."""


def _org_option(f: Any) -> Any:
    return click.option("--org", "org", help="Organisation slug (default: CMIS_ORG).")(f)


def _platform_option(f: Any) -> Any:
    return click.option("--platform", help="Only this platform's accounts.")(f)


@accounts.command("list")
@_org_option
@_platform_option
@json_option
def list_accounts(org: str | None, platform: str | None, as_json: bool) -> int:
    """The organisation's ad accounts, enabled for sync or not."""
    from sqlalchemy import select

    from cmis_core.settings import Settings
    from cmis_core.store import open_store, tables

    settings = Settings.from_env()
    t = tables.ad_accounts
    with open_store(settings) as store:
        found = store.get_org(settings.require_org(org))
        with store.org(found.id, write=False) as conn:
            query = select(*(t.c[c] for c in COLUMNS)).where(t.c.org_id == found.id)
            if platform:
                query = query.where(t.c.platform == platform)
            rows = [
                dict(r)
                for r in conn.execute(query.order_by(t.c.platform, t.c.external_id)).mappings()
            ]
    for row in rows:
        row["sync_enabled"] = bool(row["sync_enabled"])
    emit(rows, as_json=as_json, columns=COLUMNS)
    return int(ExitCode.OK)


def _toggle(
    org: str | None, platform: str | None, ids: tuple[str, ...], every: bool, on: bool
) -> int:
    from sqlalchemy import update

    from cmis_core.settings import Settings
    from cmis_core.store import open_store, tables

    if bool(ids) == every:
        raise UsageError("name the accounts (ACCOUNT_ID ...) or pass --all, not both")
    settings = Settings.from_env()
    t = tables.ad_accounts
    with open_store(settings) as store:
        found = store.get_org(settings.require_org(org))
        with store.org(found.id) as conn:
            query = update(t).where(t.c.org_id == found.id).values(sync_enabled=on)
            if platform:
                query = query.where(t.c.platform == platform)
            if ids:
                query = query.where(t.c.external_id.in_(ids))
            changed = conn.execute(query).rowcount
            if ids and changed != len(set(ids)):
                raise UsageError(
                    f"{len(set(ids)) - changed} of the accounts named are not known"
                    + (f" for {platform}" if platform else ""),
                    hint="`cmis accounts list` shows the accounts sync has found",
                )
    verb = "enabled" if on else "disabled"
    click.echo(f"{verb} {changed} account{'s' if changed != 1 else ''} of {found.slug}")
    return int(ExitCode.OK)


@accounts.command("enable")
@_org_option
@_platform_option
@click.option("--all", "every", is_flag=True, help="Every account (of --platform).")
@click.argument("ids", nargs=-1)
def enable(org: str | None, platform: str | None, every: bool, ids: tuple[str, ...]) -> int:
    """Sync reads these accounts (ACCOUNT_ID as listed: act_123, 1234567890...)."""
    return _toggle(org, platform, ids, every, True)


@accounts.command("disable")
@_org_option
@_platform_option
@click.option("--all", "every", is_flag=True, help="Every account (of --platform).")
@click.argument("ids", nargs=-1)
def disable(org: str | None, platform: str | None, every: bool, ids: tuple[str, ...]) -> int:
    """Sync leaves these accounts alone (their stored data stays)."""
    return _toggle(org, platform, ids, every, False)
