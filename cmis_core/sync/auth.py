"""How a run's API calls carry the integration's tokens, and the one refresh on a 401.

The engine is handed two async callables (the runner wires them to the token store):

- ``tokens_provider()``: the integration's current tokens, fresh (refreshed ahead of
  expiry, single-flight across processes);
- ``on_token_rejected(tokens)``: the platform refused ``tokens``; refresh once and return
  the new ones, or ``None`` (or raise ``ReauthRequired``) when the grant is gone.

:class:`RunAuth` signs every request with the auth provider's ``http_auth(tokens)``
(Meta's adds ``appsecret_proof`` from the settings), and :meth:`RunAuth.refresher` is the
hook the HTTP client calls once per rejected request: concurrent rejections share one
refresh, and a request signed with tokens already replaced is just signed again.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Generator

import httpx2

from cmis_core.contract import AuthProvider
from cmis_core.settings import PlatformSettings
from cmis_core.types import TokenSet

TokensProvider = Callable[[], Awaitable[TokenSet]]
TokenRenewer = Callable[[TokenSet], Awaitable[TokenSet | None]]

DERIVED_PARAMS = ("appsecret_proof",)  # query parameters computed from the token


def http_auth(provider: AuthProvider, tokens: TokenSet, settings: PlatformSettings) -> httpx2.Auth:
    """``provider.http_auth(tokens)``, passing ``settings=`` to providers that take it."""
    make = provider.http_auth
    try:
        takes_settings = "settings" in inspect.signature(make).parameters
    except (TypeError, ValueError):
        takes_settings = False
    if takes_settings:
        auth: httpx2.Auth = make(tokens, settings=settings)  # type: ignore[call-arg]
    else:
        auth = make(tokens)
    return auth


class RunAuth(httpx2.Auth):
    """Signs a run's requests with the current tokens; swaps them after a refresh."""

    def __init__(
        self,
        provider: AuthProvider,
        settings: PlatformSettings,
        tokens: TokenSet,
        *,
        tokens_provider: TokensProvider,
        on_token_rejected: TokenRenewer | None = None,
    ) -> None:
        self._provider = provider
        self._settings = settings
        self._tokens = tokens
        self._auth = http_auth(provider, tokens, settings)
        self._tokens_provider = tokens_provider
        self._renew = on_token_rejected
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"RunAuth(<hidden>, refreshes={self.refreshes})"

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        yield from self._auth.auth_flow(request)

    def _signed_with(self, request: httpx2.Request, token: str) -> bool:
        header = request.headers.get("authorization") or ""
        return token in header or token in request.url.params.values()

    def _resign(self, request: httpx2.Request, old: str) -> httpx2.Request:
        headers = httpx2.Headers(request.headers)
        headers.pop("authorization", None)
        params = [
            (k, v)
            for k, v in request.url.params.multi_items()
            if (not old or v != old) and k not in DERIVED_PARAMS
        ]
        fresh = httpx2.Request(
            request.method,
            request.url.copy_with(params=params or None),
            headers=headers,
            content=request.read(),
            extensions=dict(request.extensions),
        )
        signed = next(self._auth.auth_flow(fresh))
        return signed

    async def refresher(self, request: httpx2.Request) -> httpx2.Request | None:
        """The ``on_token_rejected`` hook of :func:`~cmis_core.http.http_scope`."""
        async with self._lock:
            current = self._tokens
            if self._signed_with(request, current.access_token):
                fresh = (
                    await self._renew(current)
                    if self._renew is not None
                    else await self._tokens_provider()
                )
                if fresh is None or fresh.access_token == current.access_token:
                    return None
                self.refreshes += 1
                self._tokens = fresh
                self._auth = http_auth(self._provider, fresh, self._settings)
                old = current.access_token
            else:
                old = _token_in(request) or ""
            return self._resign(request, old)


def _token_in(request: httpx2.Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    return value or None if scheme.lower() == "bearer" else None
