"""`cmis leads`: the leads an organisation received (field names, never their values)."""

from __future__ import annotations

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode

COLUMNS = ("created_time", "platform", "external_id", "form_id", "campaign_id", "is_test", "fields")


@click.group()
def leads() -> None:
    """Leads."""


@leads.command("list")
@click.option("--org", help="Organisation slug; default: CMIS_ORG.")
@click.option("--platform", help="Only this platform's leads.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def list_leads(org: str | None, platform: str | None, limit: int, as_json: bool) -> int:
    """The leads received, newest first. Field values are personal data: only their
    names are shown; read them from the database."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store
    from cmis_core.webhooks.leads import list_leads as read

    settings = Settings.from_env()
    with open_store(settings) as store:
        found = store.get_org(settings.require_org(org))
        with store.org(found.id, write=False) as conn:
            rows = read(conn, platform=platform, limit=limit)
    emit([r.to_json() for r in rows], as_json=as_json, columns=COLUMNS)
    return int(ExitCode.OK)
