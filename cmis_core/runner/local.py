"""The in-process executor: ``cmis run`` and ``cmis sync`` do the work themselves.

:func:`run_due` does all the work that is due, then returns: token refreshes ahead of
expiry (and expiry warnings for grants nothing can renew), syncs whose schedule came
(``CMIS_RUN_CONCURRENCY`` integrations at a time), then the webhook inbox and the
retention purge. :func:`sync_now` syncs one organisation's integrations at once,
whatever their schedule.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from cmis_core.errors import CmisError, ExitCode, UsageError
from cmis_core.runner import report as R
from cmis_core.runner.schedule import WorkItem, integrations_of, needing_reauth
from cmis_core.runner.work import Runtime, SyncOptions, process_inbox, run_integration
from cmis_core.types import IntegrationStatus, utcnow

if TYPE_CHECKING:
    from cmis_core.sync.engine import Progress

log = structlog.get_logger(__name__)

ProgressFor = Callable[[str, str], "Progress | None"]
"""Given an org slug and a platform, the engine's ``progress(stream, n)`` callback, if any."""


def run_concurrency(rt: Runtime) -> int:
    """``CMIS_RUN_CONCURRENCY``: integrations worked on at once by one ``cmis run``."""
    return rt.settings.whole_number("CMIS_RUN_CONCURRENCY", 2, minimum=1)


def refresh_horizon(rt: Runtime) -> dt.timedelta:
    """How far ahead refreshes are due: the refresh window, or the expiry-warning days for
    grants that cannot renew themselves (they are announced that far ahead)."""
    settings = rt.settings
    seconds = max(settings.token_refresh_window, settings.token_expiry_warning_days * 86400)
    return dt.timedelta(seconds=seconds)


def _slugs(rt: Runtime) -> dict[int, str]:
    return {org.id: org.slug for org in rt.store.list_orgs()}


async def _run_items(
    rt: Runtime,
    items: Sequence[WorkItem],
    slugs: dict[int, str],
    *,
    options: SyncOptions | None,
    progress_for: ProgressFor | None,
) -> list[R.IntegrationReport]:
    from cmis_core.http import HttpHub

    limit = asyncio.Semaphore(run_concurrency(rt))
    async with HttpHub.from_settings(rt.settings) as hub:

        async def one(item: WorkItem) -> R.IntegrationReport:
            org = slugs.get(item.org_id, str(item.org_id))
            async with limit:
                return await run_integration(
                    rt,
                    item,
                    org=org,
                    hub=hub,
                    options=options,
                    progress=progress_for(org, item.platform) if progress_for else None,
                )

        return list(await asyncio.gather(*(one(item) for item in items)))


async def run_due(
    rt: Runtime,
    *,
    now: dt.datetime | None = None,
    inbox: bool = True,
    progress_for: ProgressFor | None = None,
) -> R.RunReport:
    """Do everything due now, in this process; the report says what and its exit code."""
    from cmis_core.http import HttpHub
    from cmis_core.runner.expiry import check_expiries

    started = utcnow()
    report = R.RunReport(started_at=started, executor="local")
    earlier = await asyncio.to_thread(needing_reauth, rt.store)
    due = await asyncio.to_thread(
        rt.store.due_integrations, now or started, refresh_ahead=refresh_horizon(rt)
    )
    slugs = await asyncio.to_thread(_slugs, rt)
    log.info("runner.due", integrations=len(due), needs_reauth=len(earlier))
    items = [WorkItem.from_due(d) for d in due]
    report.integrations.extend(
        await _run_items(rt, items, slugs, options=None, progress_for=progress_for)
    )
    report.integrations.extend(await check_expiries(rt))
    for known in earlier:
        report.integrations.append(
            R.IntegrationReport(
                org=known.org,
                platform=known.platform,
                integration_id=known.integration_id,
                status=R.NEEDS_REAUTH,
                exit_code=ExitCode.OK,
                earlier=True,
                error="needs re-authorisation since an earlier run: "
                f"cmis connect {known.platform} --org {known.org}",
            )
        )
    if inbox:
        try:
            async with HttpHub.from_settings(rt.settings) as hub:
                report.inbox = await process_inbox(rt, hub)
        except CmisError as exc:
            report.inbox_error = f"{type(exc).__name__}: {exc.message}"
            log.warning("runner.inbox_failed", error=report.inbox_error)
    report.finished_at = utcnow()
    log.info("runner.finished", exit_code=int(report.exit_code))
    return report


async def sync_now(
    rt: Runtime,
    org: str,
    *,
    platform: str | None = None,
    options: SyncOptions | None = None,
    progress_for: ProgressFor | None = None,
) -> R.RunReport:
    """Sync organisation ``org``'s integrations (or just ``platform``) now, refresh first.

    An integration that needs re-authorisation is reported (exit 77); a disconnected one
    is left out unless asked for by ``platform`` (then a usage error).
    """
    found = await asyncio.to_thread(rt.store.get_org, org)
    known = await asyncio.to_thread(integrations_of, rt.store, found.id, found.slug)
    if platform is not None:
        rt.registry.platform(platform)  # UnknownPlatform (exit 2) when not installed
        known = [k for k in known if k.platform == platform]
        if not known:
            raise UsageError(
                f"{platform} is not connected for organisation {found.slug}",
                hint=f"connect it first: cmis connect {platform} --org {found.slug}",
            )
    report = R.RunReport(started_at=utcnow(), executor="local")
    items: list[WorkItem] = []
    for k in known:
        if k.status == IntegrationStatus.ACTIVE:
            items.append(
                WorkItem(org_id=k.org_id, integration_id=k.integration_id, platform=k.platform)
            )
        elif k.status == IntegrationStatus.NEEDS_REAUTH:
            report.integrations.append(
                R.IntegrationReport(
                    org=k.org,
                    platform=k.platform,
                    integration_id=k.integration_id,
                    status=R.NEEDS_REAUTH,
                    exit_code=ExitCode.NOPERM,
                    earlier=True,
                    error=f"reconnect it: cmis connect {k.platform} --org {k.org}",
                )
            )
        elif platform is not None:
            raise UsageError(
                f"the {k.platform} integration of {k.org} is disconnected",
                hint=f"connect it again: cmis connect {k.platform} --org {k.org}",
            )
    if not known:
        raise UsageError(
            f"organisation {found.slug} has no integrations",
            hint=f"connect one: cmis connect PLATFORM --org {found.slug}",
        )
    slugs = {found.id: found.slug}
    report.integrations[:0] = await _run_items(
        rt, items, slugs, options=options, progress_for=progress_for
    )
    report.finished_at = utcnow()
    return report
