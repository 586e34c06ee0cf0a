"""OAuth2Provider against the example sandbox: the flow, rotation, and the error contract."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import structlog

from cmis_core.contract import SandboxOptions
from cmis_core.errors import (
    Fatal,
    OAuthFlowError,
    RateLimited,
    ReauthRequired,
    TokenRejected,
    Transient,
)
from cmis_core.settings import PlatformSettings
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.serve import RunningSandbox, serve_sandbox
from cmis_core.types import PlatformContext, TokenSet

pytest.importorskip("cmis_example")
from cmis_example import client, plugin
from cmis_example.auth import ExampleAuth

REDIRECT = "http://127.0.0.1:8000/cb"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with serve_sandbox(plugin.cmis_sandboxes()[0], SandboxOptions(rate_limit=False)) as running:
        yield running


@pytest.fixture
async def ctx(sandbox: RunningSandbox) -> AsyncIterator[PlatformContext]:
    async with httpx2.AsyncClient() as http:
        yield PlatformContext(
            platform=client.platform(),
            settings=PlatformSettings(platform="example", environ=sandbox.env),
            http=http,
            log=structlog.get_logger(),
        )


@pytest.fixture
def control(sandbox: RunningSandbox, ctx: PlatformContext) -> SandboxControl:
    return SandboxControl(sandbox.base_url, ctx.http, platform="example")


async def connect(ctx: PlatformContext) -> TokenSet:
    auth = ExampleAuth()
    request = await auth.begin(ctx, redirect_uri=REDIRECT, state="s1", scopes=("ads.read",))
    query = parse_qs(urlsplit(request.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert request.verifier
    assert request.verifier not in request.url
    location = (await ctx.http.get(request.url)).headers["location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return await auth.complete(ctx, params=params, request=request, redirect_uri=REDIRECT)


async def test_connect_then_refresh_keeps_the_rotated_refresh_token(ctx: PlatformContext) -> None:
    tokens = await connect(ctx)
    assert tokens.scopes == ("ads.read",)
    assert tokens.expires_at is not None
    assert tokens.refresh_token
    fresh = await ExampleAuth().refresh(ctx, tokens)
    assert fresh.refresh_token not in (None, tokens.refresh_token)
    again = await ExampleAuth().refresh(ctx, fresh)  # the rotated one works
    stale = await ExampleAuth().refresh(ctx, tokens) if False else None
    assert again.access_token != fresh.access_token
    assert stale is None
    with pytest.raises(ReauthRequired) as caught:  # the rotated-away one is refused
        await ExampleAuth().refresh(ctx, tokens)
    assert not isinstance(caught.value, TokenRejected)


async def test_a_lost_verifier_fails_the_flow(ctx: PlatformContext) -> None:
    auth = ExampleAuth()
    request = await auth.begin(ctx, redirect_uri=REDIRECT, state="s1", scopes=())
    location = (await ctx.http.get(request.url)).headers["location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    other = await auth.begin(ctx, redirect_uri=REDIRECT, state="s2", scopes=())
    with pytest.raises(OAuthFlowError):
        await auth.complete(ctx, params=params, request=other, redirect_uri=REDIRECT)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "server_error", "status": 503}, Transient),
        ({"kind": "status", "status": 429, "headers": {"Retry-After": "9"}}, RateLimited),
    ],
)
async def test_token_endpoint_failures_that_may_pass(ctx, control, fault, error) -> None:
    tokens = await connect(ctx)
    await control.fault(path="/oauth/token", method="POST", **fault)
    with pytest.raises(error) as caught:
        await ExampleAuth().refresh(ctx, tokens)
    if error is RateLimited:
        assert caught.value.retry_after == 9
    assert (await ExampleAuth().refresh(ctx, tokens)).access_token  # the grant survived


async def test_wrong_client_secret_is_fatal_with_a_hint(ctx: PlatformContext) -> None:
    tokens = await connect(ctx)
    env = dict(ctx.settings.environ, CMIS_EXAMPLE_CLIENT_SECRET="wrong")
    bad = PlatformContext(
        platform=ctx.platform,
        settings=PlatformSettings(platform="example", environ=env),
        http=ctx.http,
        log=ctx.log,
    )
    with pytest.raises(Fatal) as caught:
        await ExampleAuth().refresh(bad, tokens)
    assert "CMIS_EXAMPLE_CLIENT_SECRET" in (caught.value.hint or "")
    assert "wrong" not in str(caught.value)


async def test_network_failure_is_transient(ctx: PlatformContext) -> None:
    tokens = await connect(ctx)
    env = dict(ctx.settings.environ, CMIS_EXAMPLE_TOKEN_URL="http://127.0.0.1:9")
    down = PlatformContext(
        platform=ctx.platform,
        settings=PlatformSettings(platform="example", environ=env),
        http=ctx.http,
        log=ctx.log,
    )
    with pytest.raises(Transient):
        await ExampleAuth().refresh(down, tokens)
