"""Helpers: serve the Google sandbox, connect to it, and build contexts for the plugin."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import structlog
from cmis_google import sandbox
from cmis_google.auth import GoogleAuth
from cmis_google.client import platform

from cmis_core.auth.oauth2 import BearerAuth
from cmis_core.contract import SandboxOptions
from cmis_core.settings import PlatformSettings
from cmis_core.testing.serve import serve
from cmis_core.types import PlatformContext, TokenSet

REDIRECT = "http://127.0.0.1:8000/oauth/callback"


@attrs.frozen
class Served:
    base_url: str
    env: dict[str, str]

    def settings(self, **extra: str) -> PlatformSettings:
        env = dict(self.env)
        env.update({f"CMIS_GOOGLE_{k}": v for k, v in extra.items()})
        return PlatformSettings(platform="google", environ=env)


@contextlib.contextmanager
def serve_google(
    size: str = "small", *, rate_limit: bool = False, **extra: Any
) -> Iterator[Served]:
    options = SandboxOptions(seed=7, size=size, rate_limit=rate_limit, extra=extra)
    with serve(sandbox.build(options)) as base:
        yield Served(base_url=base, env=sandbox.env(base))


def context(settings: PlatformSettings, http: httpx2.AsyncClient) -> PlatformContext:
    return PlatformContext(
        platform=platform(), settings=settings, http=http, log=structlog.get_logger("test")
    )


async def connect(settings: PlatformSettings) -> TokenSet:
    """The whole connect flow against the sandbox."""
    async with httpx2.AsyncClient() as http:
        ctx = context(settings, http)
        auth = GoogleAuth()
        request = await auth.begin(
            ctx, redirect_uri=REDIRECT, state=secrets.token_urlsafe(8), scopes=platform().scopes
        )
        answer = await http.get(request.url)
        params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        return await auth.complete(ctx, params=params, request=request, redirect_uri=REDIRECT)


def api_client(tokens: TokenSet) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(auth=BearerAuth(tokens.access_token), timeout=10.0)


async def control(served: Served, method: str, path: str, json: Any = None) -> Mapping[str, Any]:
    async with httpx2.AsyncClient() as http:
        answer = await http.request(method, served.base_url + "/_sandbox" + path, json=json)
        answer.raise_for_status()
        result: Mapping[str, Any] = answer.json()
        return result
