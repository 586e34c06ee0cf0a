"""Past one machine: the same work as Celery tasks, run by ``cmis worker`` (prefork).

``cmis run --executor celery`` picks the due work and marks it enqueued in one
transaction (:func:`~cmis_core.runner.schedule.pick_and_mark`), then publishes one task
per integration (``cmis.integration``) and one for the inbox (``cmis.inbox``). A second
``cmis run`` finds the marks and enqueues nothing twice. Tasks are idempotent and
acknowledged late (``acks_late``, ``reject_on_worker_lost``): a worker killed mid-task
has its task delivered again, and the per-integration lock still holds, so two workers
never sync one integration at once; the next sync resumes the run the kill interrupted.

Decisions (DESIGN.md): ``asyncio.run`` per task; the HTTP hub, locks and governor are
made inside that loop, never at import; the store is opened lazily in each worker
process after the fork (an engine inherited from the parent is disposed); the runner
never uses a countdown: a platform's long wait moves ``next_sync_at`` in the database
instead, so nothing waits in the broker near Redis's visibility timeout. SQLite is
refused: workers on several machines need one shared database.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from cmis_core.errors import ConfigurationError, ExitCode, MissingSetting
from cmis_core.runner import report as R
from cmis_core.runner.schedule import INBOX, WorkItem, queued_name, unmark
from cmis_core.types import utcnow

if TYPE_CHECKING:
    from celery import Celery

    from cmis_core.runner.work import Runtime
    from cmis_core.settings import Settings

log = structlog.get_logger(__name__)

INTEGRATION_TASK = "cmis.integration"
INBOX_TASK = "cmis.inbox"
DEFAULT_QUEUE = "cmis"


def _seconds(settings: Settings, name: str, default: float) -> float:
    raw = settings.environ.get(name) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds above 0, got {raw!r}")
    return value


def queue_name(settings: Settings) -> str:
    """``CMIS_CELERY_QUEUE``: the queue tasks go to and workers read (default ``cmis``)."""
    return settings.environ.get("CMIS_CELERY_QUEUE") or DEFAULT_QUEUE


def queued_seconds(settings: Settings) -> float:
    """``CMIS_RUN_QUEUED_SECONDS``: how long an enqueued mark keeps others from enqueuing."""
    return _seconds(settings, "CMIS_RUN_QUEUED_SECONDS", 3600.0)


def check_celery_settings(settings: Settings) -> str:
    """The broker URL, after refusing SQLite and a missing broker."""
    if settings.is_sqlite:
        raise ConfigurationError(
            "the Celery executor refuses SQLite: workers need one shared database",
            hint="set CMIS_DATABASE_URL to PostgreSQL, or run `cmis run` without --executor",
        )
    broker = settings.celery_broker_url
    if not broker:
        raise MissingSetting("CMIS_CELERY_BROKER_URL", "the Celery executor needs a broker")
    if urlsplit(broker).scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp"):
        raise ConfigurationError(
            "CMIS_CELERY_BROKER_URL must be a redis:// or amqp:// URL",
            hint="Redis or RabbitMQ are the brokers cmis supports",
        )
    return broker


def make_app(settings: Settings) -> Celery:
    """The Celery app of ``settings``, with the runner's tasks registered."""
    broker = check_celery_settings(settings)
    try:
        from celery import Celery
    except ImportError:
        raise ConfigurationError(
            "the Celery executor needs the celery extra", hint="pip install 'cmis-core[celery]'"
        ) from None
    queue = queue_name(settings)
    transport: dict[str, Any] = {
        "visibility_timeout": _seconds(settings, "CMIS_CELERY_VISIBILITY_TIMEOUT", 3600.0)
    }
    if urlsplit(broker).scheme.startswith("redis"):
        transport["global_keyprefix"] = f"{queue}:"
    app = Celery("cmis", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
    )

    @app.task(name=INTEGRATION_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def integration(item: dict[str, Any], org: str, owner: str) -> str:
        return _integration_task(settings, item, org, owner)

    @app.task(name=INBOX_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def inbox(owner: str) -> dict[str, int]:
        return _inbox_task(settings, owner)

    return app


# ------------------------------------------------------------------ in the worker processes

_RUNTIME: dict[str, Any] = {}


def _runtime(settings: Settings) -> Runtime:
    """This worker process's runtime, opened on first use (after the fork)."""
    from cmis_core.runner.work import Runtime

    found = _RUNTIME.get("rt")
    if found is None:
        manager = Runtime.open(settings)
        found = manager.__enter__()
        _RUNTIME["rt"], _RUNTIME["manager"] = found, manager
    rt: Runtime = found
    return rt


def forget_runtime() -> None:
    """After a fork: drop the parent's runtime without closing its connections."""
    rt = _RUNTIME.pop("rt", None)
    _RUNTIME.pop("manager", None)
    if rt is not None:
        rt.store.engine.dispose(close=False)


def _integration_task(settings: Settings, item: dict[str, Any], org: str, owner: str) -> str:
    from cmis_core.http import HttpHub
    from cmis_core.runner.work import run_integration

    rt = _runtime(settings)
    work = WorkItem(**item)
    status = R.ERROR

    async def go() -> R.IntegrationReport:
        async with HttpHub.from_settings(rt.settings) as hub:
            return await run_integration(rt, work, org=org, hub=hub)

    try:
        done = asyncio.run(go())
        status = done.status
        return status
    finally:
        if status != R.LOCKED:  # the holder gives the mark back when it finishes
            unmark(rt.store, queued_name(work.org_id, work.integration_id), owner)


def _inbox_task(settings: Settings, owner: str) -> dict[str, int]:
    from cmis_core.http import HttpHub
    from cmis_core.runner.work import process_inbox

    rt = _runtime(settings)

    async def go() -> dict[str, int]:
        async with HttpHub.from_settings(rt.settings) as hub:
            return await process_inbox(rt, hub)

    try:
        return asyncio.run(go())
    finally:
        unmark(rt.store, f"queued:{INBOX}", owner)


# ------------------------------------------------------------------ enqueuing


def enqueue_due(rt: Runtime, *, inbox: bool = True, app: Celery | None = None) -> R.RunReport:
    """Pick the due work, mark it enqueued (one transaction), publish it; the report lists
    what was enqueued (``queued``) and the integrations that already need reconnecting."""
    from cmis_core.runner.local import refresh_horizon
    from cmis_core.runner.locks import new_owner
    from cmis_core.runner.schedule import needing_reauth, pick_and_mark

    app = app or make_app(rt.settings)
    queue = queue_name(rt.settings)
    report = R.RunReport(started_at=utcnow(), executor="celery")
    owner = new_owner()
    slugs = {org.id: org.slug for org in rt.store.list_orgs()}
    items, inbox_marked = pick_and_mark(
        rt.store,
        owner,
        now=report.started_at,
        refresh_ahead=refresh_horizon(rt),
        seconds=queued_seconds(rt.settings),
        inbox=inbox,
    )
    for item in items:
        org = slugs.get(item.org_id, str(item.org_id))
        entry = R.IntegrationReport(
            org=org, platform=item.platform, integration_id=item.integration_id, status=R.QUEUED
        )
        try:
            app.send_task(INTEGRATION_TASK, args=[item.to_json(), org, owner], queue=queue)
        except Exception as exc:  # the broker is down: give the mark back, say so
            unmark(rt.store, queued_name(item.org_id, item.integration_id), owner)
            entry.status, entry.exit_code = R.ERROR, ExitCode.PARTIAL
            entry.error = f"could not enqueue: {type(exc).__name__}"
        report.integrations.append(entry)
    if inbox_marked:
        try:
            app.send_task(INBOX_TASK, args=[owner], queue=queue)
            report.inbox = {"queued": 1}
        except Exception as exc:
            unmark(rt.store, f"queued:{INBOX}", owner)
            report.inbox_error = f"could not enqueue the inbox: {type(exc).__name__}"
    for known in needing_reauth(rt.store):
        report.integrations.append(
            R.IntegrationReport(
                org=known.org,
                platform=known.platform,
                integration_id=known.integration_id,
                status=R.NEEDS_REAUTH,
                earlier=True,
                error=f"reconnect it: cmis connect {known.platform} --org {known.org}",
            )
        )
    report.finished_at = utcnow()
    log.info("runner.enqueued", integrations=len(items), inbox=inbox_marked, queue=queue)
    return report
