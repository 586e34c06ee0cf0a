"""``OAuth1Provider``: OAuth 1.0a (RFC 5849) for X Ads: request token, authorize, access token.

A platform's provider subclasses it and sets its paths::

    class XAuth(OAuth1Provider):
        platform = "twitter"
        request_token_path = "/oauth/request_token"
        authorize_path = "/oauth/authorize"
        access_token_path = "/oauth/access_token"
        invalidate_path = "/1.1/oauth/invalidate_token"
        identify_path = "/1.1/account/verify_credentials.json"

Requests are signed HMAC-SHA1 with authlib's signer (``authlib.oauth1``) and sent through
the shared client ``ctx.http``. The request-token secret travels in
:attr:`AuthorizationRequest.verifier` (sealed with the state); the callback is matched to
its state by the request token (``oauth_token``), which is unguessable and single use.
Access tokens do not expire: ``refresh`` raises :class:`~cmis_core.errors.ReauthRequired`
(a refused token can only be reconnected). URLs: ``ctx.url("auth")`` for the consent page,
``ctx.url("token")`` for the token endpoints, ``ctx.url("api")`` for ``identify``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode

import httpx2

from cmis_core.errors import (
    CmisError,
    Fatal,
    OAuthFlowError,
    RateLimited,
    ReauthRequired,
    TokenRejected,
    Transient,
)
from cmis_core.settings import PlatformSettings, Settings
from cmis_core.sync.paging import retry_after
from cmis_core.types import AuthorizationRequest, Identity, PlatformContext, TokenSet

FORM = "application/x-www-form-urlencoded"


class OAuth1Auth(httpx2.Auth):
    """Signs each request (HMAC-SHA1, ``Authorization: OAuth ...``); secrets never in a repr.

    Form-encoded bodies are part of the signature; other bodies are sent unsigned, as
    RFC 5849 section 3.4.1.3 says.
    """

    requires_request_body = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token: str | None = None,
        token_secret: str | None = None,
        callback: str | None = None,
        verifier: str | None = None,
    ) -> None:
        from authlib.oauth1.rfc5849.client_auth import ClientAuth

        self._client = ClientAuth(
            client_id,
            client_secret=client_secret,
            token=token,
            token_secret=token_secret,
            redirect_uri=callback,
            verifier=verifier,
        )

    def __repr__(self) -> str:
        return "OAuth1Auth(<hidden>)"

    def sign(self, request: httpx2.Request) -> None:
        """Add the ``Authorization`` header to ``request``."""
        form = FORM in request.headers.get("content-type", "")
        body = request.content.decode("utf-8") if form else ""
        headers: dict[str, str] = {}
        if form:
            headers["Content-Type"] = FORM
        _, signed, _ = self._client.sign(request.method, str(request.url), headers, body)
        request.headers["Authorization"] = signed["Authorization"]

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        self.sign(request)
        yield request


class OAuth1Provider:
    """An :class:`~cmis_core.contract.AuthProvider` for OAuth 1.0a platforms."""

    platform: str
    flow: str = "oauth1"
    request_token_path: ClassVar[str] = "/oauth/request_token"
    authorize_path: ClassVar[str] = "/oauth/authorize"
    access_token_path: ClassVar[str] = "/oauth/access_token"
    invalidate_path: ClassVar[str | None] = None
    identify_path: ClassVar[str | None] = None

    # ------------------------------------------------------------------ signing
    def _consumer(self, settings: PlatformSettings | None) -> tuple[str, str]:
        settings = settings or Settings.from_env().platform(self.platform)
        return settings.client_id, settings.client_secret

    def signer(
        self,
        settings: PlatformSettings | None,
        *,
        token: str | None = None,
        token_secret: str | None = None,
        callback: str | None = None,
        verifier: str | None = None,
    ) -> OAuth1Auth:
        key, secret = self._consumer(settings)
        return OAuth1Auth(
            key,
            secret,
            token=token,
            token_secret=token_secret,
            callback=callback,
            verifier=verifier,
        )

    def http_auth(self, tokens: TokenSet, settings: PlatformSettings | None = None) -> httpx2.Auth:
        """Sign API calls with the consumer and the access token (settings from the env if
        not given)."""
        return self.signer(settings, token=tokens.access_token, token_secret=tokens.token_secret)

    # ------------------------------------------------------------------ the flow
    async def begin(
        self,
        ctx: PlatformContext,
        *,
        redirect_uri: str,
        state: str,
        scopes: tuple[str, ...],
    ) -> AuthorizationRequest:
        """Fetch a request token for ``redirect_uri``; the consent URL carries it."""
        auth = self.signer(ctx.settings, callback=redirect_uri)
        data = await self._token_call(
            ctx, ctx.url("token") + self.request_token_path, auth, phase="connect"
        )
        token, secret = data.get("oauth_token"), data.get("oauth_token_secret")
        if not token or not secret:
            raise OAuthFlowError(f"{self.platform} returned no request token")
        if data.get("oauth_callback_confirmed", "true") != "true":
            raise OAuthFlowError(f"{self.platform} did not confirm the callback URL")
        url = ctx.url("auth") + self.authorize_path + "?" + urlencode({"oauth_token": token})
        return AuthorizationRequest(url=url, verifier=secret, extra={"oauth_token": token})

    async def complete(
        self,
        ctx: PlatformContext,
        *,
        params: Mapping[str, str],
        request: AuthorizationRequest,
        redirect_uri: str,
    ) -> TokenSet:
        """Exchange the authorized request token and ``oauth_verifier`` for an access token."""
        if params.get("denied") or params.get("error"):
            raise OAuthFlowError(f"{self.platform} refused the authorization (denied)")
        token, verifier = params.get("oauth_token"), params.get("oauth_verifier")
        if not token or not verifier:
            raise OAuthFlowError(f"{self.platform} sent no oauth_verifier")
        if token != request.extra.get("oauth_token"):
            raise OAuthFlowError(f"{self.platform} answered for another request token")
        auth = self.signer(
            ctx.settings, token=token, token_secret=request.verifier, verifier=verifier
        )
        data = await self._token_call(
            ctx, ctx.url("token") + self.access_token_path, auth, phase="connect"
        )
        if not data.get("oauth_token") or not data.get("oauth_token_secret"):
            raise Fatal(f"{self.platform} answered the access-token request without a token")
        extra = {k: v for k, v in data.items() if k in ("user_id", "screen_name")}
        return TokenSet(
            access_token=data["oauth_token"],
            token_secret=data["oauth_token_secret"],
            token_type="oauth1",
            extra=extra,
        )

    async def refresh(self, ctx: PlatformContext, tokens: TokenSet) -> TokenSet:
        """OAuth 1.0a tokens do not expire and cannot be refreshed: reconnect."""
        raise ReauthRequired(
            f"{self.platform} tokens cannot be refreshed; the user must reconnect",
            platform=self.platform,
            code="no_refresh",
        )

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        """``GET identify_path`` (``id_str``/``id``, ``screen_name``/``name``), else the ids
        the access-token answer carried."""
        if self.identify_path is None:
            user = tokens.extra.get("user_id")
            if not user:
                raise NotImplementedError(f"{type(self).__name__} must implement identify()")
            return Identity(user_id=str(user), name=tokens.extra.get("screen_name"))
        response = await self._send(
            ctx,
            "GET",
            ctx.url("api") + self.identify_path,
            self.http_auth(tokens, ctx.settings),
            phase="api",
        )
        body = response.json()
        user = body.get("id_str") or body.get("id")
        return Identity(
            user_id=str(user), name=body.get("screen_name") or body.get("name"), scopes=()
        )

    async def revoke(self, ctx: PlatformContext, tokens: TokenSet) -> bool:
        """Invalidate the access token where the platform offers it."""
        if self.invalidate_path is None:
            return False
        await self._send(
            ctx,
            "POST",
            ctx.url("token") + self.invalidate_path,
            self.http_auth(tokens, ctx.settings),
            phase="revoke",
        )
        return True

    # ------------------------------------------------------------------ building blocks
    async def _token_call(
        self, ctx: PlatformContext, url: str, auth: OAuth1Auth, *, phase: str
    ) -> dict[str, str]:
        response = await self._send(ctx, "POST", url, auth, phase=phase)
        return dict(parse_qsl(response.text))

    async def _send(
        self, ctx: PlatformContext, method: str, url: str, auth: httpx2.Auth, *, phase: str
    ) -> httpx2.Response:
        try:
            response = await ctx.http.request(method, url, auth=auth)
        except httpx2.TimeoutException:
            raise Transient(f"{self.platform}: the {phase} request timed out") from None
        except httpx2.TransportError as exc:
            raise Transient(
                f"{self.platform}: network error in the {phase} request ({type(exc).__name__})"
            ) from None
        if response.is_success:
            return response
        raise self.error(response, phase=phase)

    def error(self, response: httpx2.Response, *, phase: str) -> CmisError:
        """The typed error for a refused OAuth 1.0a request."""
        status, name = response.status_code, self.platform
        if status == 429:
            return RateLimited(
                f"{name} is rate limiting {phase} requests",
                retry_after=retry_after(response),
                platform=name,
                status=status,
            )
        if status >= 500:
            return Transient(f"{name} failed the {phase} request (HTTP {status})", status=status)
        if phase == "connect":
            return OAuthFlowError(f"{name} refused the {phase} request (HTTP {status})")
        if status == 401:
            return TokenRejected(
                f"{name} refused the access token (HTTP 401)", platform=name, status=status
            )
        return Fatal(f"{name} refused the {phase} request (HTTP {status})", status=status)


__all__ = ["OAuth1Auth", "OAuth1Provider"]
