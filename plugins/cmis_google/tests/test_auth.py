"""Google's OAuth: offline access with forced consent and PKCE; refusals carry the hint."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from cmis_google.auth import GoogleAuth
from cmis_google.sandbox import CLIENT_ID, CLIENT_SECRET
from google_helpers import REDIRECT, connect, context, control, serve_google

from cmis_core.errors import ReauthRequired, TokenRejected


async def test_consent_url_asks_for_offline_access_with_pkce() -> None:
    with serve_google() as served:
        async with httpx2.AsyncClient() as http:
            ctx = context(served.settings(), http)
            request = await GoogleAuth().begin(
                ctx, redirect_uri=REDIRECT, state="s1", scopes=ctx.platform.scopes
            )
    url = urlsplit(request.url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/o/oauth2/v2/auth"
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["code_challenge_method"] == "S256"
    assert query["scope"] == "https://www.googleapis.com/auth/adwords"
    assert request.verifier
    assert request.verifier not in request.url


async def test_refresh_keeps_the_refresh_token_and_identify_reads_tokeninfo() -> None:
    with serve_google() as served:
        settings = served.settings()
        tokens = await connect(settings)
        async with httpx2.AsyncClient() as http:
            ctx = context(settings, http)
            fresh = await GoogleAuth().refresh(ctx, tokens)
            identity = await GoogleAuth().identify(ctx, fresh)
    assert fresh.refresh_token == tokens.refresh_token  # Google does not rotate
    assert fresh.access_token != tokens.access_token
    assert identity.user_id
    assert "https://www.googleapis.com/auth/adwords" in identity.scopes


async def test_refused_grant_needs_reauth_with_the_testing_status_hint() -> None:
    with serve_google() as served:
        settings = served.settings()
        tokens = await connect(settings)
        await control(served, "POST", "/tokens/revoke", {"token": tokens.refresh_token})
        async with httpx2.AsyncClient() as http:
            ctx = context(settings, http)
            with pytest.raises(ReauthRequired) as caught:
                await GoogleAuth().refresh(ctx, tokens)
            with pytest.raises(TokenRejected):
                await GoogleAuth().identify(ctx, tokens)
    assert not isinstance(caught.value, TokenRejected)
    assert caught.value.code == "invalid_grant"
    assert "7 days" in (caught.value.hint or "")


async def test_the_sandbox_gives_no_refresh_token_without_offline_consent() -> None:
    with serve_google() as served:
        async with httpx2.AsyncClient() as http:

            async def code(**extra: str) -> dict[str, object]:
                params = {
                    "client_id": CLIENT_ID,
                    "redirect_uri": REDIRECT,
                    "response_type": "code",
                    "scope": "openid",
                    **extra,
                }
                answer = await http.get(served.base_url + "/o/oauth2/v2/auth", params=params)
                found = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
                form = {
                    "grant_type": "authorization_code",
                    "code": found,
                    "redirect_uri": REDIRECT,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                }
                result: dict[str, object] = (
                    await http.post(served.base_url + "/token", data=form)
                ).json()
                return result

            assert "refresh_token" not in await code()
            assert "refresh_token" not in await code(access_type="offline")  # not the first
            assert "refresh_token" in await code(access_type="offline", prompt="consent")
