"""A fake OAuth 2 authorization server (RFC 6749, PKCE per RFC 7636, revocation per 7009).

The authorize endpoint approves at once (no login page): it redirects to ``redirect_uri``
with a one-time ``code`` and the ``state``, or with ``error=access_denied`` when the test
asked for a refusal (:meth:`OAuthServer.deny_next`). The token endpoint exchanges codes and
refresh tokens, checking what a strict server checks: client authentication, exact
``redirect_uri`` match, the PKCE S256 verifier, one-time codes, rotated refresh tokens.
Errors are answered in RFC 6749 section 5.2 shape (``{"error": "invalid_grant", ...}``).

Everything platform-specific is configuration (:class:`OAuthConfig`) or an overridable
method (:meth:`OAuthServer.token_body`, extra grant types in ``grant_handlers``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cmis_core.testing.sandbox.tokens import Grant, TokenStore

ClientAuth = Literal["client_secret_post", "client_secret_basic", "any", "none"]
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@attrs.frozen(kw_only=True)
class OAuthConfig:
    """How one platform's authorization server behaves.

    ``client_auth``: where the client proves itself at the token endpoint (``"any"``
    accepts the body or HTTP Basic, ``"none"`` a public client with PKCE). ``token_ttl``
    is the access-token lifetime (``None``: never expires); ``refresh_tokens`` whether
    refresh tokens exist; ``rotate_refresh`` whether each refresh returns a new one (the
    old one then refused); ``revoke_on_reuse`` whether presenting a rotated-away refresh
    token revokes the whole grant (OAuth 2.1 reuse detection).
    """

    client_id: str
    client_secret: str = attrs.field(repr=False)
    authorize_path: str = "/oauth/authorize"
    token_path: str = "/oauth/token"
    revoke_path: str | None = "/oauth/revoke"
    token_methods: tuple[str, ...] = ("POST",)
    client_auth: ClientAuth = "any"
    scopes: tuple[str, ...] = ()  # the scopes the platform knows; empty: any
    scope_separator: str = " "
    redirect_uris: tuple[str, ...] = ()  # registered URIs; empty: any URI is accepted
    require_pkce: bool = False
    allow_plain_pkce: bool = False
    token_ttl: int | None = 3600
    refresh_tokens: bool = True
    refresh_ttl: int | None = None
    rotate_refresh: bool = True
    revoke_on_reuse: bool = False
    code_ttl: int = 600
    user_id: str = "sbx_user_1"


@attrs.define
class AuthCode:
    """A one-time authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str | None
    scopes: tuple[str, ...]
    challenge: str | None
    method: str | None
    expires_at: float
    used: bool = False
    grant_id: str | None = None


class OAuthError(Exception):
    """An RFC 6749 error answer: ``error`` code, description, HTTP status."""

    def __init__(
        self, error: str, description: str, *, status: int = 400, basic: bool = False
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.basic = basic


GrantHandler = Callable[[Mapping[str, str], str], Awaitable[Mapping[str, Any]]]


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class OAuthServer:
    """The authorize, token and revocation endpoints of one fake platform."""

    def __init__(self, config: OAuthConfig, tokens: TokenStore) -> None:
        self.config = config
        self.tokens = tokens
        self.codes: dict[str, AuthCode] = {}
        self._deny_next = 0
        self.grant_handlers: dict[str, GrantHandler] = {
            "authorization_code": self._authorization_code,
            "refresh_token": self._refresh_token,
        }

    # ------------------------------------------------------------------ control
    def deny_next(self, count: int = 1) -> None:
        """The next ``count`` authorizations are refused with ``access_denied``."""
        self._deny_next += count

    def routes(self) -> list[Route]:
        routes = [
            Route(self.config.authorize_path, self.authorize, methods=["GET"]),
            Route(self.config.token_path, self.token, methods=list(self.config.token_methods)),
        ]
        if self.config.revoke_path:
            routes.append(Route(self.config.revoke_path, self.revoke, methods=["POST"]))
        return routes

    # ------------------------------------------------------------------ authorize
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        client_id = q.get("client_id")
        redirect_uri = q.get("redirect_uri")
        # Errors about the client or the redirect URI are never redirected (6749 4.1.2.1).
        if client_id != self.config.client_id:
            return self.error_response(OAuthError("invalid_client", "unknown client_id"))
        if not redirect_uri or not urlsplit(redirect_uri).scheme:
            return self.error_response(OAuthError("invalid_request", "redirect_uri required"))
        if self.config.redirect_uris and redirect_uri not in self.config.redirect_uris:
            return self.error_response(OAuthError("invalid_request", "unregistered redirect_uri"))
        state = q.get("state")

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            return RedirectResponse(_with_query(redirect_uri, params), status_code=302)

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method", "plain" if challenge else None)
        if challenge is None and self.config.require_pkce:
            return back(error="invalid_request", error_description="code_challenge required")
        if challenge is not None:
            allowed = ("S256", "plain") if self.config.allow_plain_pkce else ("S256",)
            if method not in allowed or not _VERIFIER.match(challenge):
                return back(error="invalid_request", error_description="bad code_challenge")
        scopes = tuple(s for s in (q.get("scope") or "").split(self.config.scope_separator) if s)
        unknown = [s for s in scopes if self.config.scopes and s not in self.config.scopes]
        if unknown:
            return back(error="invalid_scope", error_description=f"unknown scope {unknown[0]}")
        if self._deny_next:
            self._deny_next -= 1
            return back(error="access_denied", error_description="the user refused")
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            challenge=challenge,
            method=method,
            expires_at=self.tokens.clock.now() + self.config.code_ttl,
        )
        return back(code=code)

    # ------------------------------------------------------------------ token
    async def token(self, request: Request) -> Response:
        try:
            params = await self._params(request)
            client_id = self._authenticate(request, params)
            handler = self.grant_handlers.get(params.get("grant_type", ""))
            if handler is None:
                raise OAuthError("unsupported_grant_type", "grant_type not supported")
            body = await handler(params, client_id)
        except OAuthError as exc:
            return self.error_response(exc)
        return JSONResponse(dict(body), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "the body must be form-encoded")
            body = (await request.body()).decode("utf-8", "replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def _authenticate(self, request: Request, params: Mapping[str, str]) -> str:
        cfg = self.config
        header = request.headers.get("authorization", "")
        basic = header.lower().startswith("basic ")
        if basic and cfg.client_auth in ("client_secret_basic", "any"):
            try:
                raw = base64.b64decode(header[6:].strip(), validate=True).decode()
                user, _, password = raw.partition(":")
                client_id, secret = unquote_plus(user), unquote_plus(password)
            except (ValueError, UnicodeDecodeError):
                raise OAuthError(
                    "invalid_client", "bad Basic header", status=401, basic=True
                ) from None
        elif cfg.client_auth in ("client_secret_post", "any", "none"):
            client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        else:
            raise OAuthError(
                "invalid_client", "client authentication required", status=401, basic=True
            )
        if client_id != cfg.client_id:
            raise OAuthError("invalid_client", "unknown client", status=401, basic=basic)
        if cfg.client_auth == "none" and not secret:
            return client_id
        if not secrets.compare_digest(secret.encode(), cfg.client_secret.encode()):
            raise OAuthError(
                "invalid_client", "client authentication failed", status=401, basic=basic
            )
        return client_id

    async def _authorization_code(
        self, params: Mapping[str, str], client_id: str
    ) -> Mapping[str, Any]:
        code = self.codes.get(params.get("code", ""))
        if code is None:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if code.used:
            # A replayed code: refuse it and revoke what it produced (RFC 6749 4.1.2).
            if code.grant_id:
                self.tokens.revoke_grant(code.grant_id)
            raise OAuthError("invalid_grant", "authorization code already used")
        code.used = True
        if code.expires_at <= self.tokens.clock.now():
            raise OAuthError("invalid_grant", "authorization code expired")
        if code.client_id != client_id:
            raise OAuthError("invalid_grant", "code issued to another client")
        if code.redirect_uri is not None and params.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        verifier = params.get("code_verifier")
        if code.challenge is not None:
            if not verifier or not _VERIFIER.match(verifier):
                raise OAuthError("invalid_grant", "code_verifier missing or malformed")
            expected = s256(verifier) if code.method == "S256" else verifier
            if not secrets.compare_digest(expected, code.challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        elif verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier sent but no challenge was")
        grant = self.tokens.new_grant(
            client_id=client_id, user_id=self.config.user_id, scopes=code.scopes
        )
        code.grant_id = grant.grant_id
        return self.token_body(grant, with_refresh=self.config.refresh_tokens)

    async def _refresh_token(self, params: Mapping[str, str], client_id: str) -> Mapping[str, Any]:
        if not self.config.refresh_tokens:
            raise OAuthError("unsupported_grant_type", "this platform issues no refresh tokens")
        presented = params.get("refresh_token", "")
        record = self.tokens.refresh.get(presented)
        if record is None:
            raise OAuthError("invalid_grant", "unknown refresh token")
        grant = self.tokens.grants[record.grant_id]
        if record.used:
            if self.config.revoke_on_reuse:
                self.tokens.revoke_grant(grant.grant_id)
            raise OAuthError("invalid_grant", "refresh token already used")
        if grant.revoked:
            raise OAuthError("invalid_grant", "the grant was revoked")
        if record.expires_at is not None and record.expires_at <= self.tokens.clock.now():
            raise OAuthError("invalid_grant", "refresh token expired")
        if grant.client_id != client_id:
            raise OAuthError("invalid_grant", "refresh token issued to another client")
        if self.config.rotate_refresh:
            record.used = True
            return self.token_body(grant, with_refresh=True)
        body = dict(self.token_body(grant, with_refresh=False))
        return body

    def token_body(self, grant: Grant, *, with_refresh: bool) -> Mapping[str, Any]:
        """The token endpoint's success body; override for a platform's own shape."""
        cfg = self.config
        body: dict[str, Any] = {
            "access_token": self.tokens.issue_access(grant, cfg.token_ttl),
            "token_type": "Bearer",
            "scope": cfg.scope_separator.join(grant.scopes),
        }
        if cfg.token_ttl is not None:
            body["expires_in"] = cfg.token_ttl
        if with_refresh:
            body["refresh_token"] = self.tokens.issue_refresh(grant, cfg.refresh_ttl)
            if cfg.refresh_ttl is not None:
                body["refresh_token_expires_in"] = cfg.refresh_ttl
        return body

    # ------------------------------------------------------------------ revoke
    async def revoke(self, request: Request) -> Response:
        try:
            params = await self._params(request)
            self._authenticate(request, params)
            token = params.get("token")
            if not token:
                raise OAuthError("invalid_request", "token required")
        except OAuthError as exc:
            return self.error_response(exc)
        self.tokens.revoke(token)  # unknown tokens are answered 200 too (RFC 7009 2.2)
        return Response(status_code=200)

    def error_response(self, exc: OAuthError) -> Response:
        """An RFC 6749 section 5.2 error body; override for a platform's own shape."""
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if exc.basic and exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            status_code=exc.status,
            headers=headers,
        )
