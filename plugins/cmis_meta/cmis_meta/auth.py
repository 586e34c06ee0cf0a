"""Facebook Login: the dialog, the code exchange, the long-lived exchange, ``debug_token``.

Connect: ``www.facebook.com/{v}/dialog/oauth`` (scopes comma-separated, no PKCE: Meta marks
PKCE for manual flows as in testing) -> ``GET graph/{v}/oauth/access_token`` with the code
-> a short-lived token, exchanged at once (``grant_type=fb_exchange_token``) for a
long-lived one (about 60 days) -> ``GET /debug_token`` records the scopes granted, the
expiry and the data-access expiry. Every Graph call made with the token carries
``appsecret_proof`` (:class:`~cmis_meta.client.MetaAuth`).

There is no refresh token. :meth:`MetaAuthProvider.refresh` re-exchanges the token while
it is still valid; an expired or revoked token cannot be exchanged and raises
:class:`~cmis_core.errors.ReauthRequired`. :meth:`MetaAuthProvider.expiry` tells the
runner when to warn (``CMIS_META_EXPIRY_WARNING_DAYS`` ahead, fire the *expiring* observer)
and when the grant is gone (needs_reauth): never a silent failure. A system-user token
(``cmis connect meta --token-stdin``) goes through :meth:`MetaAuthProvider.adopt`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import httpx2

from cmis_core import AuthorizationRequest, Identity, PlatformContext, TokenSet
from cmis_core.auth.oauth2 import OAuth2Provider, Phase
from cmis_core.errors import (
    CmisError,
    Fatal,
    OAuthFlowError,
    RateLimited,
    ReauthRequired,
    TokenRejected,
    Transient,
)
from cmis_core.settings import PlatformSettings
from cmis_core.types import utcnow
from cmis_meta.client import (
    NAME,
    SCOPES,
    GraphError,
    MetaAuth,
    app_token,
    classify,
    graph_url,
    version,
    wait_seconds,
)
from cmis_meta.config import MetaConfig

ExpiryState = Literal["never", "ok", "expiring", "expired"]


@attrs.frozen(kw_only=True)
class TokenExpiry:
    """When a token without refresh stops working, and when to warn about it.

    ``state``: ``never`` (a system-user token), ``ok``, ``expiring`` (inside the warning
    window: fire ``cmis_on_integration_expiring``; :meth:`MetaAuthProvider.refresh` may
    still extend it) or ``expired`` (mark the integration needs_reauth).
    """

    state: ExpiryState
    expires_at: dt.datetime | None
    warn_at: dt.datetime | None
    renewable: bool


def _when(epoch: Any) -> dt.datetime | None:
    try:
        value = int(epoch)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC) if value > 0 else None


class MetaAuthProvider(OAuth2Provider):
    """The :class:`~cmis_core.contract.AuthProvider` for Meta."""

    platform = NAME
    pkce = False
    scope_separator = ","
    client_auth = "client_secret_post"

    # ------------------------------------------------------------------ URLs
    def authorize_url(self, ctx: PlatformContext) -> str:
        return f"{ctx.url('auth')}/{version(ctx)}/dialog/oauth"

    def token_url(self, ctx: PlatformContext) -> str:
        return graph_url(ctx, "oauth/access_token")

    def http_auth(self, tokens: TokenSet, settings: PlatformSettings | None = None) -> httpx2.Auth:
        """Bearer token, plus ``appsecret_proof`` when ``settings`` hold the app secret."""
        secret = settings.get("CLIENT_SECRET") if settings is not None else None
        return MetaAuth(tokens.access_token, secret)

    # ------------------------------------------------------------------ connect
    async def begin(
        self,
        ctx: PlatformContext,
        *,
        redirect_uri: str,
        state: str,
        scopes: tuple[str, ...],
    ) -> AuthorizationRequest:
        """The login dialog URL; ``CMIS_META_SCOPES`` overrides the scopes asked for."""
        chosen = MetaConfig.from_settings(ctx.settings).scopes or scopes or SCOPES
        return await super().begin(ctx, redirect_uri=redirect_uri, state=state, scopes=chosen)

    async def complete(
        self,
        ctx: PlatformContext,
        *,
        params: Mapping[str, str],
        request: AuthorizationRequest,
        redirect_uri: str,
    ) -> TokenSet:
        """Code -> short-lived token -> long-lived token, with scopes and expiry recorded."""
        if params.get("error"):
            reason = str(params.get("error_reason") or params["error"])[:64]
            raise OAuthFlowError(f"Meta login was not completed ({reason})")
        code = params.get("code")
        if not code:
            raise OAuthFlowError("Meta sent no authorization code")
        short = await self._token_call(
            ctx, {"redirect_uri": redirect_uri, "code": code}, phase="connect"
        )
        long_lived = await self._token_call(
            ctx,
            {"grant_type": "fb_exchange_token", "fb_exchange_token": short["access_token"]},
            phase="connect",
        )
        return await self._described(ctx, self._tokens(long_lived))

    async def adopt(self, ctx: PlatformContext, access_token: str) -> TokenSet:
        """A pasted token (a system user's, via ``--token-stdin``) checked and described."""
        tokens = TokenSet(access_token=access_token.strip())
        if not tokens.access_token:
            raise OAuthFlowError("the token given is empty")
        described = await self._described(ctx, tokens, required=True)
        await self.identify(ctx, described)
        return described

    # ------------------------------------------------------------------ keeping it fresh
    async def refresh(self, ctx: PlatformContext, tokens: TokenSet) -> TokenSet:
        """Re-exchange a still-valid token for a fresh long-lived one; expired -> reconnect."""
        if tokens.expires_at is not None and tokens.expires_at <= utcnow():
            raise ReauthRequired(
                "the Meta token has expired and cannot be exchanged; the user must reconnect",
                platform=NAME,
                code="expired",
            )
        data = await self._token_call(
            ctx,
            {"grant_type": "fb_exchange_token", "fb_exchange_token": tokens.access_token},
            phase="refresh",
        )
        fresh = self._tokens(data, previous=tokens)
        if (
            tokens.expires_at is not None
            and fresh.expires_at is not None
            and fresh.expires_at < tokens.expires_at
        ):
            fresh = attrs.evolve(fresh, expires_at=tokens.expires_at)
        return await self._described(ctx, fresh)

    def expiry(
        self, ctx: PlatformContext, tokens: TokenSet, *, now: dt.datetime | None = None
    ) -> TokenExpiry:
        """Where ``tokens`` stand: ok, expiring (warn), expired (needs_reauth) or never."""
        moments = [tokens.expires_at, _parse_iso(tokens.extra.get("data_access_expires_at"))]
        known = [m for m in moments if m is not None]
        if not known:
            return TokenExpiry(state="never", expires_at=None, warn_at=None, renewable=False)
        ends = min(known)
        days = MetaConfig.from_settings(ctx.settings).expiry_warning_days
        warn_at = ends - dt.timedelta(days=days)
        current = now or utcnow()
        state: ExpiryState = (
            "expired" if current >= ends else "expiring" if current >= warn_at else "ok"
        )
        return TokenExpiry(
            state=state, expires_at=ends, warn_at=warn_at, renewable=state != "expired"
        )

    # ------------------------------------------------------------------ who, and revoke
    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        """``GET /me``: the user (or system user); scopes and expiry from ``debug_token``."""
        response = await self._get(ctx, graph_url(ctx, "me"), {"fields": "id,name"}, tokens)
        body = response.json()
        return Identity(
            user_id=str(body["id"]),
            name=body.get("name"),
            scopes=tokens.scopes,
            expires_at=tokens.expires_at,
        )

    async def revoke(self, ctx: PlatformContext, tokens: TokenSet) -> bool:
        """``DELETE /me/permissions``: removes the app's grant for this user."""
        url = graph_url(ctx, "me/permissions")
        try:
            response = await ctx.http.delete(url, auth=self.http_auth(tokens, ctx.settings))
        except httpx2.TransportError as exc:
            raise Transient(f"Meta: network error ({type(exc).__name__})", platform=NAME) from None
        error = classify(response)
        if error is not None:
            raise error
        return True

    # ------------------------------------------------------------------ building blocks
    async def _get(
        self, ctx: PlatformContext, url: str, params: Mapping[str, str], tokens: TokenSet
    ) -> httpx2.Response:
        try:
            response = await ctx.http.get(
                url, params=dict(params), auth=self.http_auth(tokens, ctx.settings)
            )
        except httpx2.TransportError as exc:
            raise Transient(f"Meta: network error ({type(exc).__name__})", platform=NAME) from None
        error = classify(response)
        if error is not None:
            raise error
        return response

    async def _described(
        self, ctx: PlatformContext, tokens: TokenSet, *, required: bool = False
    ) -> TokenSet:
        """``tokens`` with scopes, expiry and data-access expiry from ``GET /debug_token``."""
        settings = ctx.settings
        secret = settings.get("CLIENT_SECRET")
        client_id = settings.get("CLIENT_ID")
        if not (secret and client_id):
            if required:
                settings.require("CLIENT_ID", "needed to check a pasted token (debug_token)")
                settings.require("CLIENT_SECRET", "needed to check a pasted token (debug_token)")
            return tokens
        try:
            response = await ctx.http.get(
                graph_url(ctx, "debug_token"),
                params={"input_token": tokens.access_token},
                headers={"Authorization": f"Bearer {app_token(client_id, secret)}"},
            )
        except httpx2.TransportError as exc:
            raise Transient(f"Meta: network error ({type(exc).__name__})", platform=NAME) from None
        error = classify(response)
        if error is not None:
            raise error
        info = (response.json() or {}).get("data") or {}
        if not info.get("is_valid", False):
            raise ReauthRequired("Meta says the token is not valid", platform=NAME, code=190)
        extra = dict(tokens.extra)
        extra.update(
            token_kind=str(info.get("type") or "USER"),
            user_id=str(info.get("user_id") or ""),
        )
        data_access = _when(info.get("data_access_expires_at"))
        if data_access is not None:
            extra["data_access_expires_at"] = data_access.isoformat()
        expires = _when(info.get("expires_at"))
        return attrs.evolve(
            tokens,
            scopes=tuple(info.get("scopes") or tokens.scopes),
            expires_at=expires
            if expires is not None
            else (None if "expires_at" in info else tokens.expires_at),
            extra=extra,
        )

    def _tokens(self, data: Mapping[str, Any], *, previous: TokenSet | None = None) -> TokenSet:
        tokens = self.parse_tokens(data, previous=previous)
        extra = dict(previous.extra) if previous is not None else {}
        return attrs.evolve(tokens, token_type="bearer", refresh_token=None, extra=extra)

    async def _token_call(
        self, ctx: PlatformContext, params: Mapping[str, str], *, phase: Phase
    ) -> dict[str, Any]:
        """``GET /{v}/oauth/access_token`` with the app's credentials, as Meta documents it."""
        query = {
            "client_id": ctx.settings.client_id,
            "client_secret": ctx.settings.client_secret,
            **params,
        }
        try:
            response = await ctx.http.get(self.token_url(ctx), params=query)
        except httpx2.TimeoutException:
            raise Transient("Meta: the token endpoint timed out", platform=NAME) from None
        except httpx2.TransportError as exc:
            raise Transient(
                f"Meta: network error at the token endpoint ({type(exc).__name__})", platform=NAME
            ) from None
        if not response.is_success:
            raise self.token_error(response, phase=phase)
        try:
            data = response.json()
        except ValueError:
            raise Fatal("Meta's token endpoint answered non-JSON", platform=NAME) from None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise Fatal("Meta answered the token request without a token", platform=NAME)
        return data

    def token_error(self, response: httpx2.Response, *, phase: Phase) -> CmisError:
        """The typed error for a refused token request, from Graph's error envelope."""
        status = response.status_code
        try:
            error = GraphError.from_body(response.json())
        except ValueError:
            error = None
        if status == 429 or (error is not None and error.code in (4, 17, 32, 613)):
            return RateLimited(
                "Meta is rate limiting token requests",
                retry_after=wait_seconds(response),
                platform=NAME,
                status=status,
            )
        if status >= 500 or (error is not None and error.code == 2):
            return Transient(
                f"Meta's token endpoint failed (HTTP {status})", platform=NAME, status=status
            )
        label = error.label if error is not None else f"HTTP {status}"
        if error is not None and (error.code == 101 or "client secret" in error.message.lower()):
            return Fatal(
                f"Meta refused the app credentials ({label})",
                platform=NAME,
                code=error.code,
                status=status,
                hint="check CMIS_META_CLIENT_ID and CMIS_META_CLIENT_SECRET",
            )
        if phase == "connect":
            return OAuthFlowError(f"Meta refused the login ({label})")
        if error is not None and error.code in (190, 102):
            return ReauthRequired(
                f"Meta refused to exchange the token ({label}); the user must reconnect",
                platform=NAME,
                code=error.code,
                status=status,
            )
        mapped = classify(response)
        if isinstance(mapped, TokenRejected):
            return ReauthRequired(mapped.message, platform=NAME, code=mapped.code, status=status)
        return mapped or Fatal(f"Meta refused the {phase} request ({label})", platform=NAME)


def _parse_iso(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
