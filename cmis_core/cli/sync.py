"""`cmis sync`: sync an organisation's integrations now, whatever their schedule."""

from __future__ import annotations

import datetime as dt

import click

from cmis_core.cli.output import json_option


@click.command()
@click.option("--org", help="Organisation slug (default: CMIS_ORG).")
@click.option("--platform", help="Only this platform (default: every connected one).")
@click.option(
    "--stream", "streams", multiple=True, help="Only this stream (repeatable; needs --platform)."
)
@click.option("--full-refresh", is_flag=True, help="Forget the streams' state and read it all.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Re-read daily metrics from this day (YYYY-MM-DD, UTC) on.",
)
@json_option
def sync(
    org: str | None,
    platform: str | None,
    streams: tuple[str, ...],
    full_refresh: bool,
    since: dt.datetime | None,
    as_json: bool,
) -> int:
    """Refresh tokens and sync ORG's integrations now, then exit.

    Exit codes: 0 done; 1 some work failed; 2 usage or configuration; 75 another run
    holds an integration's lock (it was skipped); 77 an integration needs reconnecting.
    """
    import asyncio

    from cmis_core.errors import UsageError
    from cmis_core.runner.console import print_report, progress_display
    from cmis_core.runner.local import sync_now
    from cmis_core.runner.work import Runtime, SyncOptions, utc_days_since
    from cmis_core.settings import Settings

    if streams and platform is None:
        raise UsageError("--stream needs --platform (stream names are per platform)")
    settings = Settings.from_env()
    slug = settings.require_org(org)
    lookback = None
    if since is not None:
        if since.date() > dt.datetime.now(dt.UTC).date():
            raise UsageError(f"--since {since.date()} is in the future")
        lookback = utc_days_since(since.date())
    options = SyncOptions(
        streams=streams or None, full_refresh=full_refresh, lookback_days=lookback
    )
    with Runtime.open(settings) as rt, progress_display(enabled=not as_json) as progress_for:
        report = asyncio.run(
            sync_now(rt, slug, platform=platform, options=options, progress_for=progress_for)
        )
    print_report(report, as_json=as_json)
    return int(report.exit_code)
