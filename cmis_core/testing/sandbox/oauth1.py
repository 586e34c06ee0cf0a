"""A fake OAuth 1.0a server (RFC 5849), shaped like X's: request token, authorize, access token.

It checks what a strict server checks: the consumer key, the HMAC-SHA1 signature over the
method, URL and parameters (with the token secret where there is one), the timestamp
window and nonce reuse, the registered callback, one-time request tokens and verifiers.
The authorize endpoint approves at once and redirects to the callback with
``oauth_token`` and ``oauth_verifier`` (or ``denied=<token>`` after :meth:`deny_next`).
Access tokens never expire; ``invalidate_path`` kills one. ``verify_path`` answers who the
token belongs to, as X's ``account/verify_credentials`` does.

``OAuth1Server(config).app()`` is a starlette app; serve it with
:func:`cmis_core.testing.serve.serve`.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

FORM = "application/x-www-form-urlencoded"


@attrs.frozen(kw_only=True)
class OAuth1Config:
    """How the fake server behaves; the paths are X's."""

    consumer_key: str
    consumer_secret: str = attrs.field(repr=False)
    request_token_path: str = "/oauth/request_token"
    authorize_path: str = "/oauth/authorize"
    access_token_path: str = "/oauth/access_token"
    invalidate_path: str = "/1.1/oauth/invalidate_token"
    verify_path: str = "/1.1/account/verify_credentials.json"
    callbacks: tuple[str, ...] = ()  # registered callback URLs; empty: any
    request_token_ttl: int = 900
    timestamp_window: int = 300
    user_id: str = "1001"
    screen_name: str = "sandbox_user"


@attrs.define
class _RequestToken:
    secret: str
    callback: str
    expires_at: float
    verifier: str | None = None
    used: bool = False


@attrs.define
class _AccessToken:
    secret: str
    user_id: str
    revoked: bool = False


def _headers(request: Request) -> dict[str, str]:
    """The headers authlib reads, in the case it looks them up with."""
    return {
        "Authorization": request.headers.get("authorization", ""),
        "Content-Type": request.headers.get("content-type", ""),
    }


class OAuth1Refused(Exception):
    """A refused request: HTTP ``status`` and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OAuth1Server:
    """The endpoints of a fake OAuth 1.0a platform, with counters tests can read."""

    def __init__(self, config: OAuth1Config) -> None:
        self.config = config
        self.request_tokens: dict[str, _RequestToken] = {}
        self.access_tokens: dict[str, _AccessToken] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.refused: list[str] = []
        self._deny_next = 0

    def deny_next(self, count: int = 1) -> None:
        """The next ``count`` authorizations are refused (``denied=`` on the callback)."""
        self._deny_next += count

    # ------------------------------------------------------------------ checking
    async def _check(self, request: Request, *, token_secret: str | None) -> dict[str, str]:
        """Verify the signature; the OAuth parameters of the request."""
        from authlib.oauth1.rfc5849.signature import (
            generate_signature_base_string,
            hmac_sha1_signature,
        )
        from authlib.oauth1.rfc5849.wrapper import OAuth1Request

        body = ""
        if FORM in request.headers.get("content-type", ""):
            body = (await request.body()).decode("utf-8")
        signed = OAuth1Request(request.method, str(request.url), body, _headers(request))
        params = dict(signed.oauth_params)
        if params.get("oauth_consumer_key") != self.config.consumer_key:
            raise OAuth1Refused(401, "unknown consumer key")
        if params.get("oauth_signature_method") != "HMAC-SHA1":
            raise OAuth1Refused(400, "signature method must be HMAC-SHA1")
        try:
            stamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            raise OAuth1Refused(401, "bad timestamp") from None
        if abs(time.time() - stamp) > self.config.timestamp_window:
            raise OAuth1Refused(401, "timestamp out of window")
        nonce = (params.get("oauth_timestamp", ""), params.get("oauth_nonce", ""))
        if not nonce[1] or nonce in self.nonces:
            raise OAuth1Refused(401, "nonce reused")
        base = generate_signature_base_string(signed)
        expected = hmac_sha1_signature(base, self.config.consumer_secret, token_secret)
        if not secrets.compare_digest(expected, signed.signature or ""):
            raise OAuth1Refused(401, "invalid signature")
        self.nonces.add(nonce)
        return params

    def _refuse(self, exc: OAuth1Refused) -> Response:
        self.refused.append(exc.message)
        return PlainTextResponse(exc.message, status_code=exc.status)

    # ------------------------------------------------------------------ endpoints
    async def request_token(self, request: Request) -> Response:
        try:
            params = await self._check(request, token_secret=None)
            callback = params.get("oauth_callback", "")
            if not urlsplit(callback).scheme:
                raise OAuth1Refused(400, "oauth_callback required")
            if self.config.callbacks and callback not in self.config.callbacks:
                raise OAuth1Refused(403, "callback URL not approved for this client")
        except OAuth1Refused as exc:
            return self._refuse(exc)
        token, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.request_tokens[token] = _RequestToken(
            secret=secret, callback=callback, expires_at=time.time() + self.config.request_token_ttl
        )
        body = urlencode(
            {"oauth_token": token, "oauth_token_secret": secret, "oauth_callback_confirmed": "true"}
        )
        return PlainTextResponse(body, media_type=FORM)

    async def authorize(self, request: Request) -> Response:
        token = request.query_params.get("oauth_token", "")
        record = self.request_tokens.get(token)
        if record is None or record.used or record.verifier is not None:
            return PlainTextResponse("unknown or used request token", status_code=400)
        parts = urlsplit(record.callback)
        if self._deny_next:
            self._deny_next -= 1
            query = urlencode({"denied": token})
        else:
            record.verifier = secrets.token_urlsafe(16)
            query = urlencode({"oauth_token": token, "oauth_verifier": record.verifier})
        query = parts.query + ("&" if parts.query else "") + query
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        return RedirectResponse(target, status_code=302)

    async def access_token(self, request: Request) -> Response:
        from authlib.oauth1.rfc5849.wrapper import OAuth1Request

        peek = OAuth1Request(request.method, str(request.url), None, _headers(request))
        record = self.request_tokens.get(peek.token or "")
        try:
            if record is None:
                raise OAuth1Refused(401, "unknown request token")
            params = await self._check(request, token_secret=record.secret)
            if record.used:
                raise OAuth1Refused(401, "request token already used")
            record.used = True
            if record.expires_at <= time.time():
                raise OAuth1Refused(401, "request token expired")
            verifier = params.get("oauth_verifier")
            if record.verifier is None or not secrets.compare_digest(
                verifier or "", record.verifier
            ):
                raise OAuth1Refused(401, "invalid oauth_verifier")
        except OAuth1Refused as exc:
            return self._refuse(exc)
        token = f"{self.config.user_id}-{secrets.token_urlsafe(24)}"
        secret = secrets.token_urlsafe(24)
        self.access_tokens[token] = _AccessToken(secret=secret, user_id=self.config.user_id)
        body = urlencode(
            {
                "oauth_token": token,
                "oauth_token_secret": secret,
                "user_id": self.config.user_id,
                "screen_name": self.config.screen_name,
            }
        )
        return PlainTextResponse(body, media_type=FORM)

    async def _access(self, request: Request) -> _AccessToken:
        from authlib.oauth1.rfc5849.wrapper import OAuth1Request

        peek = OAuth1Request(request.method, str(request.url), None, _headers(request))
        record = self.access_tokens.get(peek.token or "")
        if record is None or record.revoked:
            raise OAuth1Refused(401, "invalid or expired token")
        await self._check(request, token_secret=record.secret)
        return record

    async def verify(self, request: Request) -> Response:
        try:
            record = await self._access(request)
        except OAuth1Refused as exc:
            return self._refuse(exc)
        return JSONResponse(
            {"id_str": record.user_id, "screen_name": self.config.screen_name, "name": "Sandbox"}
        )

    async def invalidate(self, request: Request) -> Response:
        try:
            record = await self._access(request)
        except OAuth1Refused as exc:
            return self._refuse(exc)
        record.revoked = True
        return JSONResponse({"access_token": "invalidated"})

    def app(self) -> Starlette:
        c = self.config
        return Starlette(
            routes=[
                Route(c.request_token_path, self.request_token, methods=["POST"]),
                Route(c.authorize_path, self.authorize, methods=["GET"]),
                Route(c.access_token_path, self.access_token, methods=["POST"]),
                Route(c.invalidate_path, self.invalidate, methods=["POST"]),
                Route(c.verify_path, self.verify, methods=["GET"]),
            ]
        )
