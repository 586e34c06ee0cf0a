"""One integration's due work, under its lock: refresh its token, sync it, reschedule it.

:func:`run_integration` is what every executor runs per integration: ``cmis sync``,
``cmis run`` in process, and the Celery task. The lock is taken first, before any
platform call; a second runner finds it held and reports ``locked`` (exit 75).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

import attrs
import httpx2
import structlog

from cmis_core.errors import CmisError, ExitCode, RateLimited, ReauthRequired
from cmis_core.runner import report as R
from cmis_core.runner.locks import DEFAULT_LEASE_SECONDS, integration_lock
from cmis_core.runner.schedule import WorkItem, mark_started, reschedule
from cmis_core.store.records import RouteTarget
from cmis_core.sync.result import FAILED, SUCCEEDED, SyncResult
from cmis_core.types import PlatformContext, TokenSet

if TYPE_CHECKING:
    from cmis_core.factory import Registry
    from cmis_core.http import HttpHub
    from cmis_core.settings import Settings
    from cmis_core.store import Store
    from cmis_core.sync.engine import Progress
    from cmis_core.vault import Vault

log = structlog.get_logger(__name__)


@attrs.frozen(kw_only=True)
class Runtime:
    """What the work needs, opened once per process (per worker process under Celery)."""

    settings: Settings
    store: Store
    vault: Vault
    registry: Registry

    @classmethod
    @contextlib.contextmanager
    def open(cls, settings: Settings, *, registry: Registry | None = None) -> Iterator[Runtime]:
        """Open the store, vault and registry of ``settings``; the store is closed after."""
        from cmis_core.factory import get_registry
        from cmis_core.store import open_store
        from cmis_core.vault import Vault

        with open_store(settings) as store:
            yield cls(
                settings=settings,
                store=store,
                vault=Vault.from_settings(settings),
                registry=registry or get_registry(),
            )

    def lease_seconds(self) -> float:
        """``CMIS_SYNC_LOCK_SECONDS``: the SQLite lock lease (renewed every third of it)."""
        from cmis_core.errors import ConfigurationError

        raw = self.settings.environ.get("CMIS_SYNC_LOCK_SECONDS") or ""
        if not raw:
            return DEFAULT_LEASE_SECONDS
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if value < 3:
            raise ConfigurationError(
                f"CMIS_SYNC_LOCK_SECONDS must be 3 seconds or more, got {raw!r}"
            )
        return value


@attrs.frozen(kw_only=True)
class SyncOptions:
    """What ``cmis sync`` may ask of a sync beyond the schedule."""

    streams: Sequence[str] | None = None
    full_refresh: bool = False
    lookback_days: int | None = None  # --since: re-read daily metrics from that day


def _settings_for(settings: Settings, platform: str, options: SyncOptions) -> Settings:
    if options.lookback_days is None:
        return settings
    from cmis_core.settings import Settings as S

    variable = settings.platform(platform).variable("LOOKBACK_DAYS")
    return S.from_env({**settings.environ, variable: str(options.lookback_days)})


def _only_rescheduled(result: SyncResult) -> bool:
    """The run's only trouble is a wait the platform asked for (``RetryLater``)."""
    if result.retry_after is None or result.status == FAILED:
        return False
    if any(a.status == "failed" for a in result.accounts.values()):
        return False
    errors = sum(s.errors for s in result.streams.values())
    waits = sum(1 for s in result.streams.values() for m in s.messages if ": RetryLater:" in m)
    return errors == waits


def _client(rt: Runtime, hub: HttpHub, platform: str) -> httpx2.AsyncClient:
    settings = rt.settings.platform(platform)
    return hub.client(rt.registry.platform(platform), app=settings.get("CLIENT_ID"))


def _describe(exc: CmisError) -> str:
    from cmis_core.redaction import neutralise, redact_text

    return neutralise(redact_text(f"{type(exc).__name__}: {exc.message}"))


async def _refresh(rt: Runtime, item: WorkItem, report: R.IntegrationReport) -> bool:
    """The refresh phase; ``False`` when the integration now needs re-authorisation."""
    from cmis_core.auth.tokens import RefreshPolicy, _refresh_one

    policy = RefreshPolicy.from_settings(rt.settings)
    outcome = await _refresh_one(
        rt.store, rt.vault, rt.registry, rt.settings, item.org_id, item.platform, policy
    )
    report.refresh = outcome.outcome if outcome.detail != "expiring" else "refreshed, expiring"
    if outcome.outcome == "needs_reauth":
        report.status, report.exit_code = R.NEEDS_REAUTH, ExitCode.NOPERM
        report.error = outcome.detail
        return False
    if outcome.outcome == "failed":
        report.error = f"token refresh failed: {outcome.detail}"
        if not item.sync:
            report.status, report.exit_code = R.FAILED, ExitCode.PARTIAL
    return True


def _apply_result(report: R.IntegrationReport, result: SyncResult) -> None:
    report.sync = result
    if result.status == SUCCEEDED:
        report.status, report.exit_code = R.SUCCEEDED, ExitCode.OK
    elif result.reauth_required:
        report.status, report.exit_code = R.NEEDS_REAUTH, ExitCode.NOPERM
    elif _only_rescheduled(result):
        report.status, report.exit_code = R.RESCHEDULED, ExitCode.OK
    else:
        report.status, report.exit_code = result.status, ExitCode.PARTIAL
    if result.error and report.error is None:
        report.error = result.error


async def _sync(
    rt: Runtime,
    item: WorkItem,
    report: R.IntegrationReport,
    *,
    hub: HttpHub,
    options: SyncOptions,
    progress: Progress | None,
) -> None:
    from cmis_core.auth.tokens import fresh_tokens, new_http_client, on_token_rejected
    from cmis_core.sync.engine import sync_integration

    settings = _settings_for(rt.settings, item.platform, options)
    args = (rt.store, rt.vault, rt.registry, settings, item.org_id, item.platform)
    # token calls go through a plain client: the provider reads the token endpoint's
    # errors itself (a refused grant is re-authorisation, not an API error)
    async with new_http_client(settings) as http:

        async def provide() -> TokenSet:
            return await fresh_tokens(*args, http=http)

        async def renew(rejected: TokenSet) -> TokenSet | None:
            return await on_token_rejected(*args, http=http, rejected=rejected)

        await asyncio.to_thread(mark_started, rt.store, item.org_id, item.integration_id)
        try:
            result = await sync_integration(
                rt.store,
                rt.registry,
                settings,
                org_id=item.org_id,
                platform=item.platform,
                hub=hub,
                tokens_provider=provide,
                on_token_rejected=renew,
                streams=options.streams,
                full_refresh=options.full_refresh,
                progress=progress,
            )
        except RateLimited as exc:  # a wait before the run could start (a throttled refresh)
            report.status, report.exit_code = R.RESCHEDULED, ExitCode.OK
            report.error = _describe(exc)
            report.next_sync_at = await asyncio.to_thread(
                reschedule,
                rt.store,
                item.org_id,
                item.integration_id,
                finished_at=None,
                retry_after=exc.retry_after or 60.0,
            )
            return
    _apply_result(report, result)
    if report.status == R.NEEDS_REAUTH:
        return
    wait = result.retry_after if report.status in (R.RESCHEDULED, R.PARTIAL) else None
    report.next_sync_at = await asyncio.to_thread(
        reschedule,
        rt.store,
        item.org_id,
        item.integration_id,
        finished_at=result.finished_at,
        retry_after=wait,
    )
    if result.status != FAILED:
        await asyncio.to_thread(_requeue_unroutable, rt.store, item.platform)


def _requeue_unroutable(store: Store, platform: str) -> None:
    from cmis_core.webhooks import inbox

    with store.system() as conn:
        inbox.requeue_unroutable(conn, platform=platform)


async def run_integration(
    rt: Runtime,
    item: WorkItem,
    *,
    org: str,
    hub: HttpHub,
    options: SyncOptions | None = None,
    progress: Progress | None = None,
    owner: str | None = None,
) -> R.IntegrationReport:
    """Take the integration's lock, then refresh and/or sync it as ``item`` says.

    Never raises for one integration's trouble: the report says what happened, with the
    exit code it contributes (``locked`` 75, ``needs_reauth`` 77, ``partial`` 1, ...).
    """
    options = options or SyncOptions()
    report = R.IntegrationReport(
        org=org, platform=item.platform, integration_id=item.integration_id
    )
    lock = integration_lock(
        rt.store, item.org_id, item.integration_id, owner=owner, lease_seconds=rt.lease_seconds()
    )
    with structlog.contextvars.bound_contextvars(
        org=org, platform=item.platform, integration_id=item.integration_id
    ):
        if not await lock.acquire():
            report.status, report.exit_code = R.LOCKED, ExitCode.TEMPFAIL
            report.error = "another run is working on this integration; skipped"
            log.info("runner.skipped_locked", lock=lock.name)
            return report
        try:
            if item.refresh and not await _refresh(rt, item, report):
                return report
            if item.sync:
                await _sync(rt, item, report, hub=hub, options=options, progress=progress)
            elif report.status == R.SUCCEEDED:
                report.status = (
                    R.REFRESHED if (report.refresh or "").startswith("refreshed") else R.CHECKED
                )
        except ReauthRequired as exc:
            report.status, report.exit_code = R.NEEDS_REAUTH, ExitCode.NOPERM
            report.error = _describe(exc)
        except CmisError as exc:
            code = exc.exit_code
            report.status = R.ERROR if code in (ExitCode.USAGE, ExitCode.SOFTWARE) else R.FAILED
            report.exit_code = code
            report.error = _describe(exc)
            log.warning("runner.integration_failed", error=report.error)
        except Exception as exc:
            report.status, report.exit_code = R.ERROR, ExitCode.SOFTWARE
            report.error = f"unexpected {type(exc).__name__} (a bug; see the log)"
            log.exception("runner.integration_crashed")
        finally:
            await lock.release()
        log.info(
            "runner.integration_done",
            status=report.status,
            exit_code=int(report.exit_code),
            records=report.sync.records if report.sync else 0,
        )
        return report


# ------------------------------------------------------------------ the inbox's token contexts


class TokenContexts:
    """The inbox processor's contexts: clients signed with the routed integration's tokens."""

    def __init__(self, rt: Runtime, hub: HttpHub) -> None:
        self.rt = rt
        self.hub = hub
        self._clients: dict[tuple[int, str], PlatformContext] = {}

    async def __call__(self, platform: str, target: RouteTarget) -> PlatformContext:
        from cmis_core.auth.tokens import fresh_tokens
        from cmis_core.sync.auth import http_auth

        key = (target.org_id, platform)
        found = self._clients.get(key)
        if found is not None:
            return found
        rt = self.rt
        base = self.hub.context(rt.registry.platform(platform), rt.settings.platform(platform))
        tokens = await fresh_tokens(
            rt.store, rt.vault, rt.registry, rt.settings, target.org_id, platform, http=base.http
        )
        client = httpx2.AsyncClient(
            transport=base.http._transport,
            auth=http_auth(rt.registry.auth_provider(platform), tokens, base.settings),
            timeout=base.http.timeout,
            headers=base.http.headers,
            trust_env=False,
        )
        found = self._clients[key] = attrs.evolve(base, http=client)
        return found

    async def aclose(self) -> None:
        for ctx in self._clients.values():
            await ctx.http.aclose()
        self._clients.clear()


@contextlib.asynccontextmanager
async def token_contexts(rt: Runtime, hub: HttpHub) -> AsyncIterator[TokenContexts]:
    """:class:`TokenContexts` closed at the end of the block."""
    contexts = TokenContexts(rt, hub)
    try:
        yield contexts
    finally:
        await contexts.aclose()


async def process_inbox(rt: Runtime, hub: HttpHub) -> dict[str, int]:
    """Process the inbox's due deliveries, then purge bodies past the retention."""
    from cmis_core.webhooks.process import InboxProcessor, ProcessOptions, purge_processed

    async with token_contexts(rt, hub) as contexts:
        processor = InboxProcessor(
            rt.store,
            rt.registry,
            rt.settings,
            contexts=contexts,
            options=ProcessOptions.from_settings(rt.settings),
        )
        report = await processor.run()
    purged = await asyncio.to_thread(purge_processed, rt.store, rt.settings)
    return {**report.to_json(), "purged": purged}


def utc_days_since(day: dt.date, *, today: dt.date | None = None) -> int:
    """Days from ``day`` to today (UTC) inclusive: the look-back that reaches ``day``."""
    today = today or dt.datetime.now(dt.UTC).date()
    return max(1, (today - day).days + 1)


__all__ = [
    "Runtime",
    "SyncOptions",
    "TokenContexts",
    "process_inbox",
    "run_integration",
    "token_contexts",
    "utc_days_since",
]
