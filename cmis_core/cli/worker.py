"""`cmis worker`: a Celery worker (prefork) running what `cmis run --executor celery` enqueues."""

from __future__ import annotations

import os

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help="Worker processes (default: one per CPU).",
)
@click.option(
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def worker(concurrency: int | None, loglevel: str) -> int:
    """Run a Celery worker for cmis's tasks (needs PostgreSQL and CMIS_CELERY_BROKER_URL).

    Reads the queue CMIS_CELERY_QUEUE (default `cmis`). Stop it with SIGTERM: it finishes
    the tasks it runs; a killed worker's tasks are delivered again to another.
    """
    from celery.signals import worker_process_init

    from cmis_core.runner.celery_app import forget_runtime, make_app, queue_name
    from cmis_core.runner.work import Runtime
    from cmis_core.settings import Settings

    settings = Settings.from_env()
    app = make_app(settings)  # refuses SQLite, needs a broker
    with Runtime.open(settings):  # the schema and the role are checked before any fork
        pass

    def after_fork(**_: object) -> None:
        forget_runtime()

    worker_process_init.connect(after_fork, weak=False)
    argv = [
        "worker",
        "--pool=prefork",
        f"--queues={queue_name(settings)}",
        f"--loglevel={loglevel.upper()}",
        f"--hostname=cmis-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv)
    return 0
