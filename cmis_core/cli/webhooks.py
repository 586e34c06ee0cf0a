"""`cmis webhooks`: the inbox of webhook deliveries: process it, list it, retry rows."""

from __future__ import annotations

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode

COLUMNS = ("id", "platform", "status", "attempts", "received_at", "next_attempt_at", "error")


@click.group()
def webhooks() -> None:
    """The webhook inbox."""


@webhooks.command("process")
@click.option("--platform", help="Only this platform's deliveries.")
@click.option(
    "--batches", type=click.IntRange(1), help="Stop after this many batches (default: all due)."
)
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 5000))
@json_option
def process(platform: str | None, batches: int | None, batch_size: int, as_json: bool) -> int:
    """Process the deliveries that are due, then purge bodies past the retention.

    Exits 1 when a delivery was parked as failed in this run.
    """
    import asyncio
    import json

    from cmis_core.factory import get_registry
    from cmis_core.settings import Settings
    from cmis_core.store import open_store
    from cmis_core.webhooks.process import InboxProcessor, ProcessOptions, purge_processed

    settings = Settings.from_env()
    options = ProcessOptions.from_settings(settings, platform=platform, batch_size=batch_size)
    with open_store(settings) as store:
        processor = InboxProcessor(store, get_registry(), settings, options=options)
        report = asyncio.run(processor.run(max_batches=batches))
        purged = purge_processed(store, settings)
    summary = {**report.to_json(), "purged": purged}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"processed {report.processed}, unroutable {report.unroutable}, "
            f"retrying {report.retrying}, failed {report.failed} "
            f"({report.leads} leads written, {purged} bodies purged)"
        )
    return int(ExitCode.PARTIAL if report.failed else ExitCode.OK)


@webhooks.command("list")
@click.option("--failed", is_flag=True, help="Only rows parked as failed.")
@click.option(
    "--status",
    type=click.Choice(["received", "processed", "unroutable", "failed"]),
    help="Only rows with this status.",
)
@click.option("--platform", help="Only this platform's rows.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def list_rows(
    failed: bool, status: str | None, platform: str | None, limit: int, as_json: bool
) -> int:
    """Inbox rows, newest first (never their bodies)."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store
    from cmis_core.webhooks import inbox

    statuses = ["failed"] if failed else [status] if status else None
    with open_store(Settings.from_env()) as store, store.system(write=False) as conn:
        rows = inbox.list_rows(conn, statuses=statuses, platform=platform, limit=limit)
    emit([r.to_json() for r in rows], as_json=as_json, columns=COLUMNS)
    return int(ExitCode.OK)


@webhooks.command("retry")
@click.argument("ids", nargs=-1, required=True, type=int)
def retry(ids: tuple[int, ...]) -> int:
    """Make failed or unroutable rows ID... due again now, attempts reset."""
    from cmis_core.settings import Settings
    from cmis_core.store import open_store
    from cmis_core.webhooks import inbox

    with open_store(Settings.from_env()) as store, store.system() as conn:
        for row_id in ids:
            inbox.retry(conn, row_id)
    click.echo(f"{len(ids)} row(s) will be processed on the next run")
    return int(ExitCode.OK)
