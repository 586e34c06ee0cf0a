"""Helpers shared by the Meta tests (imported by name: the tests folder is on sys.path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import structlog
from cmis_meta.auth import MetaAuthProvider
from cmis_meta.client import platform

from cmis_core import Partition, PlatformContext, TokenSet
from cmis_core.settings import PlatformSettings

REDIRECT = "http://127.0.0.1:8000/oauth/callback"


def make_context(env: Mapping[str, str], http: httpx2.AsyncClient) -> PlatformContext:
    return PlatformContext(
        platform=platform(),
        settings=PlatformSettings(platform="meta", environ=dict(env)),
        http=http,
        log=structlog.get_logger("test"),
    )


async def connect(ctx: PlatformContext) -> TokenSet:
    """The whole Facebook Login flow against the sandbox."""
    provider = MetaAuthProvider()
    request = await provider.begin(ctx, redirect_uri=REDIRECT, state="st4te", scopes=())
    answer = await ctx.http.get(request.url)
    params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    return await provider.complete(ctx, params=params, request=request, redirect_uri=REDIRECT)


async def read(
    ctx: PlatformContext, stream: Any, partition: Partition
) -> tuple[list[Any], dict[str, Any]]:
    """Every record of ``partition`` and the state its pages committed (merged)."""
    records: list[Any] = []
    state: dict[str, Any] = {}
    async for page in stream.read(ctx, partition):
        records.extend(page.records)
        for key, value in (page.state or {}).items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return records, state
