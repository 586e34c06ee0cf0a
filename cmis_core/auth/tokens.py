"""Fresh tokens for the work: what the sync engine, webhook processing and the runner call.

::

    tokens = await fresh_tokens(store, vault, registry, settings, org_id, "meta", http=http)
    # a 401 during work (the shared HTTP client calls this back once):
    tokens = await on_token_rejected(store, vault, registry, settings, org_id, "meta",
                                     http=http, rejected=tokens)
    # the runner:
    report = await refresh_due(store, vault, registry, settings)

Single flight: however many workers (threads, processes) find a token expired, one
refresh reaches the platform. The first claims the lease ``refresh:<org>:<integration>``
in a short transaction, calls the platform with no database lock held, writes the new
tokens with a compare-and-set on the credential's version and releases the lease; the
others poll the version and continue with the tokens it wrote. A holder killed mid-refresh
delays them by at most ``CMIS_TOKEN_LEASE_SECONDS``.

Outcomes: a refused grant marks the integration ``needs_reauth`` (once), fires the
observer and raises :class:`~cmis_core.errors.ReauthRequired` (exit 77, with a reconnect
hint); nothing refreshes it again until it is reconnected. A transient failure (5xx, 429,
timeout) is retried with backoff, leaves the stored credential untouched and, when every
attempt failed, raises :class:`~cmis_core.errors.Transient` / ``RateLimited``.

Platforms without refresh tokens: a provider whose platform declares
``Capability.TOKEN_EXCHANGE`` (Meta) is asked to ``refresh`` (re-exchange) while the token
is valid; a token that nothing can renew fires ``cmis_on_integration_expiring``
``CMIS_TOKEN_EXPIRY_WARNING_DAYS`` ahead and, once expired, is marked ``needs_reauth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import attrs
import httpx2
import structlog

from cmis_core.auth import events, integrations, lease
from cmis_core.auth.integrations import IntegrationInfo, StoredTokens
from cmis_core.contract import AuthProvider
from cmis_core.errors import (
    CmisError,
    PluginError,
    RateLimited,
    ReauthRequired,
    Transient,
    UsageError,
)
from cmis_core.factory import Registry
from cmis_core.settings import Settings
from cmis_core.store import Store
from cmis_core.types import Capability, IntegrationStatus, Platform, PlatformContext, TokenSet
from cmis_core.types import utcnow as _utcnow
from cmis_core.vault import Vault

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

TokenRefresher = Callable[[httpx2.Request], Awaitable[httpx2.Request | None]]


@attrs.frozen(kw_only=True)
class RefreshPolicy:
    """How refreshes are timed: the window ahead of expiry, the lease, retries, warnings."""

    window: float = 600.0
    lease_seconds: float = 30.0
    attempts: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    poll: float = 0.05
    warning_days: int = 7

    @classmethod
    def from_settings(cls, settings: Settings) -> RefreshPolicy:
        return cls(
            window=float(settings.token_refresh_window),
            lease_seconds=float(settings.token_lease_seconds),
            attempts=settings.token_refresh_attempts,
            warning_days=settings.token_expiry_warning_days,
        )


# ---------------------------------------------------------------------- contexts and HTTP


def platform_context(
    registry: Registry, settings: Settings, platform: str, *, http: httpx2.AsyncClient
) -> PlatformContext:
    """The :class:`PlatformContext` a plugin object receives for ``platform``."""
    return PlatformContext(
        platform=registry.platform(platform),
        settings=settings.platform(platform),
        http=http,
        log=structlog.get_logger(f"cmis.{platform}").bind(platform=platform),
    )


def new_http_client(settings: Settings) -> httpx2.AsyncClient:
    """The HTTP client auth flows use when the caller has none.

    The one place to swap for the shared client of ``cmis_core.http`` (``HttpHub``).
    """
    return httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, connect=10.0), follow_redirects=False)


@contextlib.asynccontextmanager
async def open_context(
    registry: Registry, settings: Settings, platform: str
) -> AsyncIterator[PlatformContext]:
    """A :class:`PlatformContext` over a client of its own, closed at the end of the block."""
    async with new_http_client(settings) as http:
        yield platform_context(registry, settings, platform, http=http)


async def in_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a (short, synchronous) database call off the event loop."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


# ---------------------------------------------------------------------- reading


def renewable(platform: Platform, tokens: TokenSet) -> bool:
    """Whether ``tokens`` can be renewed without the user (a refresh token, an exchange)."""
    return bool(tokens.refresh_token) or Capability.TOKEN_EXCHANGE in platform.capabilities


def load_tokens(store: Store, vault: Vault, org_id: int, platform: str) -> StoredTokens:
    """The stored tokens of an active integration; ReauthRequired / UsageError otherwise."""
    with store.org(org_id, write=False) as conn:
        stored = integrations.load(conn, vault, platform)
        integration = stored.integration if stored else integrations.find(conn, platform)
    if integration is None:
        slug = events.org_slug(store, org_id)
        raise UsageError(
            f"{platform} is not connected for organisation {slug}",
            hint=f"connect it with `cmis connect {platform} --org {slug}`",
        )
    if stored is None or integration.status != IntegrationStatus.ACTIVE:
        slug = events.org_slug(store, org_id)
        state = "disconnected" if stored is None else str(integration.status)
        raise ReauthRequired(
            f"the {platform} integration of {slug} needs reconnecting (status {state})",
            platform=platform,
            code=state,
            hint=events.reconnect_hint(platform, slug),
        )
    return stored


def _lease_name(integration: IntegrationInfo) -> str:
    return f"refresh:{integration.org_id}:{integration.id}"


# ---------------------------------------------------------------------- marking


def _mark_reauth(
    store: Store, vault: Vault, integration: IntegrationInfo, version: int
) -> StoredTokens | None:
    """Mark needs_reauth unless the credential moved on since ``version`` (then return it)."""
    with store.org(integration.org_id) as conn:
        current = integrations.load(conn, vault, integration.platform)
        if current is not None and current.version != version:
            return current
        integrations.mark_needs_reauth(conn, integration)
    return None


async def _refused(
    store: Store,
    vault: Vault,
    registry: Registry,
    stored: StoredTokens,
    exc: ReauthRequired,
) -> TokenSet:
    """The grant is gone: mark, notify, raise (unless another worker already renewed it)."""
    integration = stored.integration
    moved_on = await in_thread(_mark_reauth, store, vault, integration, stored.version)
    if moved_on is not None:
        return moved_on.tokens
    reason = exc.message
    log.warning(
        "auth.needs_reauth",
        org_id=integration.org_id,
        platform=integration.platform,
        integration_id=integration.id,
        reason=reason,
    )
    await in_thread(events.needs_reauth, registry, store, integration, stored.version, reason)
    slug = await in_thread(events.org_slug, store, integration.org_id)
    raise ReauthRequired(
        f"the {integration.platform} grant of {slug} was refused; it needs reconnecting ({reason})",
        platform=integration.platform,
        code=exc.code,
        status=exc.status,
        hint=events.reconnect_hint(integration.platform, slug),
    ) from None


# ---------------------------------------------------------------------- single flight


async def _call_refresh(
    provider: AuthProvider,
    ctx: PlatformContext,
    tokens: TokenSet,
    policy: RefreshPolicy,
    renew_lease: Callable[[float], Awaitable[Any]],
) -> TokenSet:
    """``provider.refresh`` with retries and backoff for transient failures."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await provider.refresh(ctx, tokens)
        except (Transient, RateLimited) as exc:
            if attempt >= policy.attempts:
                raise
            wait = policy.backoff * 2 ** (attempt - 1)
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                wait = max(wait, exc.retry_after)
            wait = min(wait, policy.backoff_max)
            log.warning(
                "auth.refresh_retry",
                platform=provider.platform,
                attempt=attempt,
                wait=round(wait, 3),
                error=type(exc).__name__,
            )
            await renew_lease(wait + policy.lease_seconds)
            await asyncio.sleep(wait)


async def _renew(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    stored: StoredTokens,
    *,
    http: httpx2.AsyncClient,
    policy: RefreshPolicy,
) -> TokenSet:
    """Replace the tokens of ``stored`` (at its version) once, across every worker."""
    integration = stored.integration
    platform = integration.platform
    stale = stored.version
    name = _lease_name(integration)
    owner = lease.new_owner()
    provider = registry.auth_provider(platform)
    deadline = time.monotonic() + policy.lease_seconds * (policy.attempts + 2)
    poll = policy.poll
    while True:
        if await in_thread(lease.claim, store, name, owner, policy.lease_seconds):
            try:
                current = await in_thread(load_tokens, store, vault, integration.org_id, platform)
                if current.version != stale:
                    return current.tokens

                async def renew_lease(seconds: float) -> Any:
                    return await in_thread(lease.claim, store, name, owner, seconds)

                ctx = platform_context(registry, settings, platform, http=http)
                try:
                    fresh = await _call_refresh(provider, ctx, current.tokens, policy, renew_lease)
                except ReauthRequired as exc:
                    return await _refused(store, vault, registry, current, exc)
                written = await in_thread(_write, store, vault, integration, fresh, stale)
                if written is None:  # our lease ran out and another holder wrote first
                    again = await in_thread(load_tokens, store, vault, integration.org_id, platform)
                    return again.tokens
                log.info(
                    "auth.refreshed",
                    org_id=integration.org_id,
                    platform=platform,
                    integration_id=integration.id,
                    version=written,
                )
                return fresh
            finally:
                await in_thread(lease.release, store, name, owner)
        await asyncio.sleep(poll)
        poll = min(poll * 1.5, 0.5)
        current = await in_thread(load_tokens, store, vault, integration.org_id, platform)
        if current.version != stale:
            return current.tokens
        if time.monotonic() > deadline:
            raise Transient(
                f"the {platform} token refresh of another worker did not finish in time",
                platform=platform,
            )


def _write(
    store: Store, vault: Vault, integration: IntegrationInfo, tokens: TokenSet, version: int
) -> int | None:
    with store.org(integration.org_id) as conn:
        return integrations.write_tokens(conn, vault, integration, tokens, expected_version=version)


async def _expired_for_good(
    store: Store, vault: Vault, registry: Registry, stored: StoredTokens, why: str
) -> TokenSet:
    return await _refused(store, vault, registry, stored, ReauthRequired(why, code="expired"))


# ---------------------------------------------------------------------- the public calls


async def fresh_tokens(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    org_id: int,
    platform: str,
    *,
    http: httpx2.AsyncClient,
    policy: RefreshPolicy | None = None,
) -> TokenSet:
    """The tokens to work with now, refreshed first when they expire within the window.

    Raises :class:`ReauthRequired` (exit 77) when the integration needs reconnecting,
    :class:`UsageError` when it was never connected, ``Transient``/``RateLimited`` when
    a due refresh kept failing (the stored tokens are then unchanged).
    """
    policy = policy or RefreshPolicy.from_settings(settings)
    stored = await in_thread(load_tokens, store, vault, org_id, platform)
    tokens = stored.tokens
    if not tokens.expires_within(policy.window):
        return tokens
    if not renewable(registry.platform(platform), tokens):
        if tokens.expires_within(0):
            return await _expired_for_good(
                store, vault, registry, stored, "the token expired and cannot be renewed"
            )
        return tokens  # still valid; the runner announces the expiry ahead
    return await _renew(store, vault, registry, settings, stored, http=http, policy=policy)


async def on_token_rejected(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    org_id: int,
    platform: str,
    *,
    http: httpx2.AsyncClient,
    rejected: TokenSet,
    policy: RefreshPolicy | None = None,
) -> TokenSet:
    """The platform refused ``rejected``: tokens to retry with (refreshed once, single flight).

    When another worker already replaced ``rejected``, its tokens are returned without a
    call. A token nothing can renew marks the integration ``needs_reauth`` and raises.
    """
    policy = policy or RefreshPolicy.from_settings(settings)
    stored = await in_thread(load_tokens, store, vault, org_id, platform)
    if stored.tokens.access_token != rejected.access_token:
        return stored.tokens
    if not renewable(registry.platform(platform), stored.tokens):
        return await _expired_for_good(
            store,
            vault,
            registry,
            stored,
            "the platform refused the token and it cannot be renewed",
        )
    return await _renew(store, vault, registry, settings, stored, http=http, policy=policy)


async def refresh_now(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    org_id: int,
    platform: str,
    *,
    http: httpx2.AsyncClient,
    policy: RefreshPolicy | None = None,
) -> TokenSet:
    """Refresh now, whatever the expiry (single flight): `cmis integrations refresh`."""
    policy = policy or RefreshPolicy.from_settings(settings)
    stored = await in_thread(load_tokens, store, vault, org_id, platform)
    if not renewable(registry.platform(platform), stored.tokens):
        slug = await in_thread(events.org_slug, store, org_id)
        raise UsageError(
            f"the {platform} token of {slug} cannot be renewed without the user",
            hint=events.reconnect_hint(platform, slug),
        )
    return await _renew(store, vault, registry, settings, stored, http=http, policy=policy)


def _carries(request: httpx2.Request, token: str) -> bool:
    return token in request.headers.get("authorization", "") or token in str(request.url)


async def _resign(
    provider: AuthProvider, request: httpx2.Request, old: str, tokens: TokenSet
) -> httpx2.Request:
    """A copy of ``request`` presenting ``tokens`` instead of the access token ``old``."""
    headers = httpx2.Headers(request.headers)
    headers.pop("authorization", None)
    params = [
        (k, tokens.access_token if old and v == old else v)
        for k, v in request.url.params.multi_items()
    ]
    url = request.url.copy_with(params=params) if params else request.url
    fresh = httpx2.Request(
        request.method, url, headers=headers, content=request.read(), extensions=request.extensions
    )
    flow = provider.http_auth(tokens).async_auth_flow(fresh)
    signed = await flow.__anext__()
    await flow.aclose()
    return signed


def token_refresher(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    org_id: int,
    platform: str,
    *,
    http: httpx2.AsyncClient,
    policy: RefreshPolicy | None = None,
) -> TokenRefresher:
    """The callback for the shared HTTP client: a rejected request re-signed with fresh tokens.

    The tokens the request carried are found in it (header or query); if the stored ones
    are already newer they are used as they are, else they are refreshed once.
    ``ReauthRequired`` propagates from the callback.
    """

    async def refresh(request: httpx2.Request) -> httpx2.Request | None:
        stored = await in_thread(load_tokens, store, vault, org_id, platform)
        tokens = stored.tokens
        if _carries(request, tokens.access_token):
            old = tokens.access_token
            tokens = await on_token_rejected(
                store,
                vault,
                registry,
                settings,
                org_id,
                platform,
                http=http,
                rejected=tokens,
                policy=policy,
            )
        else:  # another worker renewed it already: present the stored tokens
            old = ""
        return await _resign(registry.auth_provider(platform), request, old, tokens)

    return refresh


# ---------------------------------------------------------------------- the runner


@attrs.frozen(kw_only=True)
class RefreshOutcome:
    """What happened to one integration in :func:`refresh_due`."""

    org_id: int
    integration_id: int
    platform: str
    outcome: str  # refreshed, expiring, needs_reauth, failed, skipped
    detail: str | None = None


@attrs.frozen(kw_only=True)
class RefreshReport:
    """Every integration :func:`refresh_due` looked at."""

    outcomes: tuple[RefreshOutcome, ...] = ()

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


async def _warn_if_ending(
    store: Store,
    registry: Registry,
    integration: IntegrationInfo,
    tokens: TokenSet,
    policy: RefreshPolicy,
    platform: Platform,
) -> bool:
    """Fire *expiring* when the grant ends within the warning days and nothing can extend it."""
    horizon = _utcnow() + dt.timedelta(days=policy.warning_days)
    ends: dt.datetime | None = None
    reason = ""
    if tokens.refresh_token and tokens.refresh_expires_at is not None:
        ends, reason = tokens.refresh_expires_at, "the refresh token expires"
    elif not renewable(platform, tokens) and tokens.expires_at is not None:
        ends, reason = tokens.expires_at, "the token expires and cannot be renewed"
    elif (
        Capability.TOKEN_EXCHANGE in platform.capabilities
        and not tokens.refresh_token
        and tokens.expires_at is not None
    ):
        ends, reason = tokens.expires_at, "the token expires; renewing did not extend it"
    if ends is None or ends > horizon:
        return False
    event = await in_thread(events.expiring, registry, store, integration, ends, reason=reason)
    return event is not None


async def _refresh_one(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    org_id: int,
    platform: str,
    policy: RefreshPolicy,
) -> RefreshOutcome:
    def outcome(kind: str, integration_id: int, detail: str | None = None) -> RefreshOutcome:
        return RefreshOutcome(
            org_id=org_id,
            integration_id=integration_id,
            platform=platform,
            outcome=kind,
            detail=detail,
        )

    try:
        record = registry.platform(platform)
    except PluginError as exc:
        return outcome("skipped", 0, exc.message)
    stored = await in_thread(load_tokens, store, vault, org_id, platform)
    integration, tokens = stored.integration, stored.tokens
    try:
        if renewable(record, tokens):
            exchange_only = not tokens.refresh_token
            window = policy.window
            if exchange_only:  # a long-lived token: re-exchange within the warning days
                window = max(window, policy.warning_days * 86400.0)
            if tokens.expires_within(window):
                async with open_context(registry, settings, platform) as ctx:
                    tokens = await _renew(
                        store, vault, registry, settings, stored, http=ctx.http, policy=policy
                    )
                warned = await _warn_if_ending(store, registry, integration, tokens, policy, record)
                return outcome("refreshed", integration.id, "expiring" if warned else None)
        elif tokens.expires_within(0):
            await _expired_for_good(
                store, vault, registry, stored, "the token expired and cannot be renewed"
            )
        warned = await _warn_if_ending(store, registry, integration, tokens, policy, record)
        return outcome("expiring" if warned else "skipped", integration.id)
    except ReauthRequired as exc:
        return outcome("needs_reauth", integration.id, exc.message)
    except CmisError as exc:
        log.warning(
            "auth.refresh_failed",
            org_id=org_id,
            platform=platform,
            integration_id=integration.id,
            error=type(exc).__name__,
        )
        return outcome("failed", integration.id, exc.message)


async def refresh_due(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    policy: RefreshPolicy | None = None,
) -> RefreshReport:
    """Refresh every active integration whose token expires within the window (the runner).

    Also announces (once per expiry) grants that end within the warning days and cannot
    be renewed, and marks those already expired ``needs_reauth``. One integration's
    failure never stops the others; the report says what happened to each.
    """
    policy = policy or RefreshPolicy.from_settings(settings)
    now = now or _utcnow()
    horizon = dt.timedelta(seconds=max(policy.window, policy.warning_days * 86400.0))
    due = await in_thread(store.due_integrations, now, refresh_ahead=horizon)
    outcomes = []
    for item in due:
        if not item.refresh_due:
            continue
        outcomes.append(
            await _refresh_one(store, vault, registry, settings, item.org_id, item.platform, policy)
        )
    return RefreshReport(outcomes=tuple(outcomes))


__all__ = [
    "RefreshOutcome",
    "RefreshPolicy",
    "RefreshReport",
    "TokenRefresher",
    "fresh_tokens",
    "in_thread",
    "load_tokens",
    "new_http_client",
    "on_token_rejected",
    "open_context",
    "platform_context",
    "refresh_due",
    "refresh_now",
    "renewable",
    "token_refresher",
]
