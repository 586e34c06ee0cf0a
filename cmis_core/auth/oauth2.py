"""``OAuth2Provider``: the authorization-code flow (with PKCE), refresh and revocation.

A platform's provider subclasses it, sets a few class attributes, and implements
:meth:`OAuth2Provider.identify`::

    class EchoAuth(OAuth2Provider):
        platform = "echo"
        authorize_path = "/oauth/authorize"
        token_path = "/oauth/token"
        client_auth = "client_secret_basic"

        async def identify(self, ctx, tokens): ...

URLs are the platform's auth/token base URL (``ctx.url("auth")``, ``ctx.url("token")``,
overridable with ``CMIS_<P>_AUTH_URL`` / ``_TOKEN_URL``) plus the class's paths. Every
request goes through the shared client ``ctx.http``; authlib is used only for its request
builders and PKCE, never for a client of its own.

Errors, the contract the core relies on: during refresh a refused grant
(``invalid_grant``) is :class:`~cmis_core.errors.ReauthRequired`; during connect a refused
code is :class:`~cmis_core.errors.OAuthFlowError`; 429 is
:class:`~cmis_core.errors.RateLimited`; 5xx and network failures are
:class:`~cmis_core.errors.Transient`; refused client credentials are
:class:`~cmis_core.errors.Fatal` (fix the settings, not the grant).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Generator, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx2

from cmis_core.errors import (
    CmisError,
    Fatal,
    OAuthFlowError,
    RateLimited,
    ReauthRequired,
    Transient,
)
from cmis_core.sync.paging import retry_after
from cmis_core.types import AuthorizationRequest, Identity, PlatformContext, TokenSet, utcnow

ClientAuth = Literal["client_secret_post", "client_secret_basic", "none"]
Phase = Literal["connect", "refresh", "revoke"]


class BearerAuth(httpx2.Auth):
    """Adds ``Authorization: Bearer <token>`` to each request (the token never in a repr)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class OAuth2Provider:
    """An :class:`~cmis_core.contract.AuthProvider` for OAuth 2 authorization-code platforms."""

    platform: str
    flow: str = "oauth2"
    authorize_path: ClassVar[str] = "/oauth/authorize"
    token_path: ClassVar[str] = "/oauth/token"
    revoke_path: ClassVar[str | None] = None
    scope_separator: ClassVar[str] = " "
    pkce: ClassVar[bool] = True
    client_auth: ClassVar[ClientAuth] = "client_secret_post"
    extra_authorize_params: ClassVar[Mapping[str, str]] = {}
    revoke_hint: ClassVar[str] = "refresh_token"

    # ------------------------------------------------------------------ URLs
    def authorize_url(self, ctx: PlatformContext) -> str:
        return ctx.url("auth") + self.authorize_path

    def token_url(self, ctx: PlatformContext) -> str:
        return ctx.url("token") + self.token_path

    def revoke_url(self, ctx: PlatformContext) -> str | None:
        return ctx.url("token") + self.revoke_path if self.revoke_path else None

    # ------------------------------------------------------------------ the flow
    async def begin(
        self,
        ctx: PlatformContext,
        *,
        redirect_uri: str,
        state: str,
        scopes: tuple[str, ...],
    ) -> AuthorizationRequest:
        """The consent URL (state, scopes, PKCE S256 challenge); the verifier is kept aside."""
        from authlib.common.security import generate_token
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        extra: dict[str, str] = dict(self.extra_authorize_params)
        verifier = None
        if self.pkce:
            verifier = generate_token(64)
            extra["code_challenge"] = create_s256_code_challenge(verifier)
            extra["code_challenge_method"] = "S256"
        url = prepare_grant_uri(
            self.authorize_url(ctx),
            ctx.settings.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.scope_separator.join(scopes) or None,
            state=state,
            **extra,
        )
        return AuthorizationRequest(url=url, verifier=verifier)

    async def complete(
        self,
        ctx: PlatformContext,
        *,
        params: Mapping[str, str],
        request: AuthorizationRequest,
        redirect_uri: str,
    ) -> TokenSet:
        """Exchange the callback's code (with the PKCE verifier) for tokens."""
        if params.get("error"):
            error = str(params["error"])[:64]
            raise OAuthFlowError(f"{self.platform} refused the authorization ({error})")
        code = params.get("code")
        if not code:
            raise OAuthFlowError(f"{self.platform} sent no authorization code")
        form: dict[str, str] = {"code": code}
        if request.verifier:
            form["code_verifier"] = request.verifier
        data = await self.token_request(
            ctx, "authorization_code", form, redirect_uri=redirect_uri, phase="connect"
        )
        return self.parse_tokens(data)

    async def refresh(self, ctx: PlatformContext, tokens: TokenSet) -> TokenSet:
        """New tokens; a refresh token the platform does not rotate is carried over."""
        if not tokens.refresh_token:
            raise ReauthRequired(
                f"{self.platform} gave no refresh token; reconnect", platform=self.platform
            )
        data = await self.token_request(
            ctx, "refresh_token", {"refresh_token": tokens.refresh_token}, phase="refresh"
        )
        return self.parse_tokens(data, previous=tokens)

    async def revoke(self, ctx: PlatformContext, tokens: TokenSet) -> bool:
        """Revoke the grant (RFC 7009); ``False`` when the platform has no revocation."""
        url = self.revoke_url(ctx)
        if url is None:
            return False
        token = tokens.refresh_token if self.revoke_hint == "refresh_token" else None
        form = {"token": token or tokens.access_token}
        form["token_type_hint"] = "refresh_token" if token else "access_token"
        await self._post(ctx, url, form, phase="revoke")
        return True

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        """Who the tokens belong to: each platform implements this with its "me" call."""
        raise NotImplementedError(f"{type(self).__name__} must implement identify()")

    def http_auth(self, tokens: TokenSet) -> httpx2.Auth:
        """How API calls present ``tokens`` (a bearer header unless overridden)."""
        return BearerAuth(tokens.access_token)

    # ------------------------------------------------------------------ building blocks
    async def token_request(
        self,
        ctx: PlatformContext,
        grant_type: str,
        form: Mapping[str, str],
        *,
        redirect_uri: str | None = None,
        phase: Phase,
    ) -> dict[str, Any]:
        """POST to the token endpoint; the JSON answer, or the typed error it means."""
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        body = prepare_token_request(grant_type, redirect_uri=redirect_uri, **form)
        data = await self._post(ctx, self.token_url(ctx), body, phase=phase)
        if not isinstance(data, dict) or not data.get("access_token"):
            raise Fatal(f"{self.platform} answered the token request without a token")
        return data

    async def _post(
        self, ctx: PlatformContext, url: str, body: str | Mapping[str, str], *, phase: Phase
    ) -> Any:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        fields = dict(httpx2.QueryParams(body)) if isinstance(body, str) else dict(body)
        settings = ctx.settings
        if self.client_auth == "client_secret_basic":
            pair = f"{quote(settings.client_id, safe='')}:{quote(settings.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            fields["client_id"] = settings.client_id
            if self.client_auth == "client_secret_post":
                fields["client_secret"] = settings.client_secret
        try:
            response = await ctx.http.post(url, data=fields, headers=headers)
        except httpx2.TimeoutException:
            raise Transient(f"{self.platform}: the token endpoint timed out") from None
        except httpx2.TransportError as exc:
            name = type(exc).__name__
            raise Transient(
                f"{self.platform}: network error at the token endpoint ({name})"
            ) from None
        if response.is_success:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise Fatal(f"{self.platform}'s token endpoint answered non-JSON") from None
        raise self.token_error(response, phase=phase)

    def token_error(self, response: httpx2.Response, *, phase: Phase) -> CmisError:
        """The typed error for a refused token-endpoint request (RFC 6749 section 5.2)."""
        status = response.status_code
        name = self.platform
        if status == 429:
            return RateLimited(
                f"{name} is rate limiting token requests",
                retry_after=retry_after(response),
                platform=name,
                status=status,
            )
        if status >= 500:
            return Transient(
                f"{name}'s token endpoint failed (HTTP {status})", platform=name, status=status
            )
        try:
            error = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            error = ""
        label = error[:64] or f"HTTP {status}"
        if error in ("invalid_client", "unauthorized_client"):
            return Fatal(
                f"{name} refused the client credentials ({label})",
                platform=name,
                code=error,
                status=status,
                hint=f"check CMIS_{name.upper()}_CLIENT_ID and CMIS_{name.upper()}_CLIENT_SECRET",
            )
        if phase == "connect":
            return OAuthFlowError(f"{name} refused the authorization code ({label})")
        if error == "invalid_grant":
            return ReauthRequired(
                f"{name} refused the grant ({label}); the user must reconnect",
                platform=name,
                code=error,
                status=status,
            )
        return Fatal(
            f"{name} refused the {phase} request ({label})",
            platform=name,
            code=error,
            status=status,
        )

    def parse_tokens(
        self, data: Mapping[str, Any], *, previous: TokenSet | None = None
    ) -> TokenSet:
        """A :class:`TokenSet` from a token response (``expires_in`` made absolute)."""
        now = utcnow()

        def after(seconds: Any) -> dt.datetime | None:
            try:
                return now + dt.timedelta(seconds=int(seconds)) if seconds is not None else None
            except (TypeError, ValueError):
                return None

        scope = data.get("scope")
        scopes: Any = scope.split(self.scope_separator) if isinstance(scope, str) else scope or ()
        if not scopes and previous is not None:
            scopes = previous.scopes
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        refresh_expiry = after(data.get("refresh_token_expires_in"))
        if refresh_expiry is None and previous is not None and not data.get("refresh_token"):
            refresh_expiry = previous.refresh_expires_at
        return TokenSet(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "bearer").lower(),
            refresh_token=refresh,
            expires_at=after(data.get("expires_in")),
            refresh_expires_at=refresh_expiry,
            scopes=tuple(s for s in scopes if s),
        )
