"""Connect and disconnect: the flows behind `cmis connect`, the API and the OAuth callback.

::

    start = await begin_connect(store, vault, registry, settings,
                                org_id=org.id, platform="example", http=http)
    # send the user to start.auth_url; the platform redirects to the callback with
    # ?code=...&state=... (OAuth 2) or ?oauth_token=...&oauth_verifier=... (OAuth 1.0a)
    connected = await complete_connect(store, vault, registry, settings,
                                       platform="example", params=query, http=http)

A callback with ``error=...``, a bad state (missing, unknown, expired, reused, another
platform's) or a failed exchange raises and stores nothing. Connecting again replaces the
integration's credentials (one integration per org and platform), with a warning when the
platform user differs or fewer scopes were granted than asked for. The connected
observer fires after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import httpx2
import structlog

from cmis_core.auth import events, integrations, states
from cmis_core.auth.integrations import IntegrationInfo
from cmis_core.auth.tokens import in_thread, platform_context
from cmis_core.errors import OAuthFlowError, PlatformError, ReauthRequired, UsageError
from cmis_core.factory import Registry
from cmis_core.settings import Settings
from cmis_core.store import Store
from cmis_core.types import Identity, TokenSet
from cmis_core.vault import Vault

log = structlog.get_logger(__name__)


@attrs.frozen(kw_only=True)
class ConnectStart:
    """The first leg of a connect flow: where to send the user, until when it is valid."""

    auth_url: str = attrs.field(repr=False)  # carries the state
    redirect_uri: str
    expires_at: dt.datetime
    state: str = attrs.field(repr=False)
    flow: str = "oauth2"
    state_key: str = attrs.field(default="", repr=False)  # what finds the state on callback


@attrs.frozen(kw_only=True)
class Connected:
    """A finished connect: the integration as stored, and what the user should know."""

    org: str
    integration: IntegrationInfo
    replaced: bool
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org,
            **self.integration.to_json(),
            "replaced": self.replaced,
            "warnings": list(self.warnings),
        }


@attrs.frozen(kw_only=True)
class Disconnected:
    """A finished disconnect: whether the platform revoked the grant, what was deleted."""

    org: str
    platform: str
    revoked: bool | None  # None: not attempted (no credential stored)
    revoke_error: str | None = None
    purged: bool = False
    rows_deleted: int = 0

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _state_key(flow: str, params: Mapping[str, str]) -> str | None:
    """What a callback carries to find its state: ``state``, or OAuth 1.0a's request token."""
    if flow == "oauth1":
        return params.get("oauth_token") or params.get("denied")
    return params.get("state")


def _save_state(store: Store, vault: Vault, **kwargs: Any) -> Any:
    with store.system() as conn:
        return states.save_state(conn, vault, **kwargs)


def _consume_state(
    store: Store, vault: Vault, key: str | None, platform: str
) -> states.PendingConnect:
    with store.system() as conn:
        return states.consume_state(conn, vault, key=key, platform=platform)


async def begin_connect(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    *,
    org_id: int,
    platform: str,
    http: httpx2.AsyncClient,
    redirect_uri: str | None = None,
    scopes: Sequence[str] | None = None,
) -> ConnectStart:
    """Start connecting ``platform`` for ``org_id``: a state stored, the consent URL built.

    ``redirect_uri`` must be an allowed one (default: ``CMIS_PUBLIC_URL`` +
    ``/oauth/callback/<platform>``); ``scopes`` default to the platform's.
    """
    provider = registry.auth_provider(platform)
    record = registry.platform(platform)
    redirect = states.check_redirect_uri(settings, platform, redirect_uri)
    chosen = tuple(scopes) if scopes else record.scopes
    state = states.new_state()
    ctx = platform_context(registry, settings, platform, http=http)
    request = await provider.begin(ctx, redirect_uri=redirect, state=state, scopes=chosen)
    key = state
    if provider.flow == "oauth1":
        key = request.extra.get("oauth_token") or ""
        if not key:
            raise OAuthFlowError(f"{platform} returned no request token")
    expires_at = await in_thread(
        _save_state,
        store,
        vault,
        key=key,
        org_id=org_id,
        platform=platform,
        redirect_uri=redirect,
        request=request,
        scopes=chosen,
        ttl=settings.oauth_state_ttl,
    )
    log.info("auth.connect_started", org_id=org_id, platform=platform, redirect_uri=redirect)
    return ConnectStart(
        auth_url=request.url,
        redirect_uri=redirect,
        expires_at=expires_at,
        state=state,
        flow=provider.flow,
        state_key=key,
    )


async def complete_connect(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    *,
    platform: str,
    params: Mapping[str, str],
    http: httpx2.AsyncClient,
    org_id: int | None = None,
) -> Connected:
    """Finish a connect flow from the callback's query ``params``.

    The state is consumed first (whatever follows, it cannot be used again); ``org_id``,
    when given, must be the organisation the state was issued for.
    """
    provider = registry.auth_provider(platform)
    pending = await in_thread(
        _consume_state, store, vault, _state_key(provider.flow, params), platform
    )
    if org_id is not None and pending.org_id != org_id:
        raise OAuthFlowError("this connect link was issued for another organisation")
    ctx = platform_context(registry, settings, platform, http=http)
    tokens = await provider.complete(
        ctx, params=params, request=pending.request, redirect_uri=pending.redirect_uri
    )
    identity = await provider.identify(ctx, tokens)
    return await _save(
        store, vault, registry, pending.org_id, platform, tokens, identity, pending.scopes
    )


async def connect_with_token(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    *,
    org_id: int,
    platform: str,
    access_token: str,
    http: httpx2.AsyncClient,
    refresh_token: str | None = None,
) -> Connected:
    """Connect with an existing token (a system-user or long-term token), checked first.

    A provider with an ``adopt(ctx, access_token)`` method (Meta's ``debug_token``) builds
    the token set itself; otherwise it is the token as given. Either way ``identify``
    must accept it before anything is stored.
    """
    token = access_token.strip()
    if not token:
        raise UsageError("the token given is empty")
    provider = registry.auth_provider(platform)
    ctx = platform_context(registry, settings, platform, http=http)
    try:
        adopt = getattr(provider, "adopt", None)
        if callable(adopt):
            tokens: TokenSet = await adopt(ctx, token)
        else:
            tokens = TokenSet(access_token=token, refresh_token=refresh_token)
        identity = await provider.identify(ctx, tokens)
    except ReauthRequired as exc:
        raise OAuthFlowError(f"{platform} refused the token given ({exc.message})") from None
    if tokens.expires_at is None and identity.expires_at is not None:
        tokens = attrs.evolve(tokens, expires_at=identity.expires_at)
    if not tokens.scopes and identity.scopes:
        tokens = attrs.evolve(tokens, scopes=identity.scopes)
    return await _save(store, vault, registry, org_id, platform, tokens, identity, ())


def _save_connection(
    store: Store, vault: Vault, org_id: int, platform: str, tokens: TokenSet, identity: Identity
) -> tuple[IntegrationInfo, IntegrationInfo | None, int]:
    with store.org(org_id) as conn:
        return integrations.save_connection(conn, vault, platform, tokens, identity)


async def _save(
    store: Store,
    vault: Vault,
    registry: Registry,
    org_id: int,
    platform: str,
    tokens: TokenSet,
    identity: Identity,
    requested: Sequence[str],
) -> Connected:
    info, previous, version = await in_thread(
        _save_connection, store, vault, org_id, platform, tokens, identity
    )
    warnings = []
    granted = set(info.scopes)
    missing = [s for s in requested if s not in granted] if granted else []
    if missing:
        warnings.append(f"fewer scopes were granted than asked for; missing: {', '.join(missing)}")
    if (
        previous is not None
        and previous.external_user_id
        and previous.external_user_id != info.external_user_id
    ):
        warnings.append(
            f"connected as a different {platform} user ({info.external_user_id}) than before "
            f"({previous.external_user_id})"
        )
    slug = await in_thread(events.org_slug, store, org_id)
    log.info(
        "auth.connected",
        org=slug,
        platform=platform,
        integration_id=info.id,
        replaced=previous is not None,
        warnings=len(warnings),
    )
    for warning in warnings:
        log.warning("auth.connect_warning", org=slug, platform=platform, warning=warning)
    await in_thread(events.connected, registry, store, info, version)
    return Connected(
        org=slug, integration=info, replaced=previous is not None, warnings=tuple(warnings)
    )


def _find_stored(
    store: Store, vault: Vault, org_id: int, platform: str
) -> tuple[IntegrationInfo | None, TokenSet | None]:
    with store.org(org_id, write=False) as conn:
        integration = integrations.find(conn, platform)
        if integration is None:
            return None, None
        stored = integrations.load(conn, vault, platform)
    return integration, stored.tokens if stored else None


def _disconnect(store: Store, integration: IntegrationInfo, purge: bool) -> int:
    with store.org(integration.org_id) as conn:
        return integrations.disconnect(conn, integration, purge=purge)


async def disconnect(
    store: Store,
    vault: Vault,
    registry: Registry,
    settings: Settings,
    *,
    org_id: int,
    platform: str,
    http: httpx2.AsyncClient,
    purge: bool = False,
) -> Disconnected:
    """Revoke at the platform (where it offers revocation) and delete the credentials.

    Synced data stays unless ``purge``. A revocation the platform refuses or cannot
    answer is reported (``revoke_error``) and the credentials are deleted all the same.
    """
    integration, tokens = await in_thread(_find_stored, store, vault, org_id, platform)
    slug = await in_thread(events.org_slug, store, org_id)
    if integration is None:
        raise UsageError(f"{platform} is not connected for organisation {slug}")
    revoked: bool | None = None
    revoke_error = None
    if tokens is not None:
        ctx = platform_context(registry, settings, platform, http=http)
        try:
            revoked = await registry.auth_provider(platform).revoke(ctx, tokens)
        except PlatformError as exc:
            revoked = False
            revoke_error = exc.message
            log.warning("auth.revoke_failed", org=slug, platform=platform, error=exc.message)
    deleted = await in_thread(_disconnect, store, integration, purge)
    log.info("auth.disconnected", org=slug, platform=platform, purged=purge, revoked=revoked)
    return Disconnected(
        org=slug,
        platform=platform,
        revoked=revoked,
        revoke_error=revoke_error,
        purged=purge,
        rows_deleted=deleted,
    )
