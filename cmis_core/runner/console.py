"""How runner commands show their work: rich progress bars per stream on a terminal,
structlog lines otherwise, and a summary table (or the JSON report) at the end."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
import structlog

from cmis_core.runner import report as R

if TYPE_CHECKING:
    from cmis_core.runner.local import ProgressFor
    from cmis_core.sync.engine import Progress

log = structlog.get_logger("cmis_core.runner.progress")


def _log_progress(org: str, platform: str) -> Progress:
    def progress(stream: str, records: int) -> None:
        log.info(
            "runner.stream_progress", org=org, platform=platform, stream=stream, records=records
        )

    return progress


@contextlib.contextmanager
def progress_display(*, enabled: bool) -> Iterator[ProgressFor]:
    """Progress callbacks: bars on a TTY when ``enabled``, log lines otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield _log_progress
        return
    from rich.console import Console
    from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    bars = Bars(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.completed:>8,.0f} records"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
        redirect_stderr=True,
    )
    tasks: dict[tuple[str, str, str], Any] = {}

    def progress_for(org: str, platform: str) -> Progress:
        def progress(stream: str, records: int) -> None:
            key = (org, platform, stream)
            if key not in tasks:
                tasks[key] = bars.add_task(f"{org}/{platform} {stream}", total=None)
            bars.advance(tasks[key], records)

        return progress

    with bars:
        try:
            yield progress_for
        finally:
            for task in tasks.values():
                bars.update(task, total=bars.tasks[task].completed or 1)


def _lines(item: R.IntegrationReport) -> list[str]:
    result = item.sync
    parts = [f"{item.org}/{item.platform}: {item.status}"]
    if result is not None:
        parts.append(f"{result.records:,} records, {result.calls:,} calls")
        if result.throttled:
            parts.append(f"{result.throttled} throttled")
    if item.refresh and item.refresh != "skipped":
        parts.append(f"token {item.refresh}")
    if item.next_sync_at is not None:
        parts.append(f"next sync {item.next_sync_at:%Y-%m-%d %H:%M} UTC")
    lines = [", ".join(parts)]
    if item.error:
        lines.append(f"    {item.error}")
    if result is not None:
        for account in result.accounts.values():
            if account.status != "ok":
                extra = f" ({account.error})" if account.error else ""
                lines.append(f"    account {account.external_id}: {account.status}{extra}")
    return lines


def print_report(report: R.RunReport, *, as_json: bool) -> None:
    """The run's summary on stdout: one line per integration, or the JSON report."""
    from cmis_core.redaction import neutralise, redact_text

    if as_json:
        click.echo(json.dumps(report.to_json(), default=str))
        return
    if not report.integrations:
        click.echo("nothing was due")
    for item in report.integrations:
        for line in _lines(item):
            click.echo(neutralise(redact_text(line)))
    if report.inbox is not None:
        inbox = report.inbox
        click.echo(
            f"inbox: {inbox.get('processed', 0)} processed, {inbox.get('unroutable', 0)} "
            f"unroutable, {inbox.get('retrying', 0)} retrying, {inbox.get('failed', 0)} failed "
            f"({inbox.get('leads', 0)} leads, {inbox.get('purged', 0)} bodies purged)"
        )
    if report.inbox_error:
        click.echo(f"inbox: {report.inbox_error}")
    click.echo(f"exit code {int(report.exit_code)}")
