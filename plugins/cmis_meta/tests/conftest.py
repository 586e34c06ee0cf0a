"""Fixtures: the Meta sandbox served on loopback, a context pointing at it, a connected token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
import pytest_asyncio
from cmis_meta import sandbox
from cmis_meta.auth import MetaAuthProvider
from meta_helpers import connect, make_context

from cmis_core import PlatformContext, SandboxOptions, TokenSet
from cmis_core.settings import PlatformSettings
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.serve import RunningSandbox, serve


@pytest.fixture
def served() -> Iterator[RunningSandbox]:
    """A fresh small sandbox per test (rate limits on, as Meta's)."""
    app = sandbox.build(SandboxOptions(seed=3, size="small", rate_limit=True))
    with serve(app) as base_url:
        yield RunningSandbox(platform="meta", base_url=base_url, env=sandbox.env(base_url), app=app)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
def ctx(served: RunningSandbox, http: httpx2.AsyncClient) -> PlatformContext:
    return make_context(served.env, http)


@pytest.fixture
def control(served: RunningSandbox, http: httpx2.AsyncClient) -> SandboxControl:
    return SandboxControl(served.base_url, http, platform="meta")


@pytest_asyncio.fixture
async def tokens(ctx: PlatformContext) -> TokenSet:
    return await connect(ctx)


@pytest_asyncio.fixture
async def api(served: RunningSandbox, tokens: TokenSet) -> AsyncIterator[PlatformContext]:
    """A context whose client presents ``tokens`` with ``appsecret_proof``."""
    settings = PlatformSettings(platform="meta", environ=dict(served.env))
    auth = MetaAuthProvider().http_auth(tokens, settings)
    async with httpx2.AsyncClient(timeout=10.0, auth=auth) as client:
        yield make_context(served.env, client)
