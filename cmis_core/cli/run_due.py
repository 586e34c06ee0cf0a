"""`cmis run`: everything due now, then exit: for cron, systemd timers, CronJobs, Airflow."""

from __future__ import annotations

import click

from cmis_core.cli.output import json_option


@click.command(short_help="Do the work that is due (refreshes, syncs, inbox, purges), then exit.")
@click.option(
    "--executor",
    type=click.Choice(["local", "celery"]),
    default="local",
    show_default=True,
    help="local: do the work in this process; celery: enqueue it for `cmis worker`.",
)
@click.option("--no-inbox", is_flag=True, help="Leave the webhook inbox for another process.")
@json_option
def run(executor: str, no_inbox: bool, as_json: bool) -> int:
    """Do the work that is due, then exit: token refreshes ahead of expiry, syncs whose
    schedule came (per integration, hourly by default), the webhook inbox, and the
    retention purge.

    Exit codes: 0 done; 1 some work failed; 2 usage or configuration; 75 another run
    holds an integration's lock (it was skipped); 77 an integration became in need of
    reconnecting in this run (those that already were are listed, and exit 0).
    """
    import asyncio

    from cmis_core.runner.console import print_report, progress_display
    from cmis_core.runner.work import Runtime
    from cmis_core.settings import Settings

    settings = Settings.from_env()
    if executor == "celery":
        from cmis_core.runner.celery_app import enqueue_due

        with Runtime.open(settings) as rt:
            report = enqueue_due(rt, inbox=not no_inbox)
    else:
        from cmis_core.runner.local import run_due

        with Runtime.open(settings) as rt, progress_display(enabled=not as_json) as progress_for:
            report = asyncio.run(run_due(rt, inbox=not no_inbox, progress_for=progress_for))
    print_report(report, as_json=as_json)
    return int(report.exit_code)
