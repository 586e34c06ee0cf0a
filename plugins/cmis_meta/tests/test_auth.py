"""Facebook Login against the sandbox: exchange, expiry, re-exchange, proof, system users."""

from __future__ import annotations

import datetime as dt

import attrs
import httpx2
import pytest
from cmis_meta.auth import MetaAuthProvider
from cmis_meta.client import SCOPES
from meta_helpers import connect, make_context

from cmis_core.errors import Fatal, OAuthFlowError, ReauthRequired, TokenRejected
from cmis_core.types import utcnow

LONG = 5_183_944


async def test_connect_gives_a_long_lived_token_with_scopes_and_expiry(ctx, tokens) -> None:
    assert tokens.refresh_token is None
    assert set(SCOPES) <= set(tokens.scopes)
    left = (tokens.expires_at - utcnow()).total_seconds()
    assert LONG - 60 < left <= LONG  # exchanged, not the short-lived one (3600 s)
    assert tokens.extra["token_kind"] == "USER"
    assert tokens.extra["data_access_expires_at"]
    assert tokens.access_token not in repr(tokens)


async def test_begin_uses_configured_scopes_comma_separated(served, http) -> None:
    ctx = make_context({**served.env, "CMIS_META_SCOPES": "ads_read,leads_retrieval"}, http)
    request = await MetaAuthProvider().begin(ctx, redirect_uri="http://x/cb", state="s", scopes=())
    assert "/v27.0/dialog/oauth?" in request.url
    assert "scope=ads_read%2Cleads_retrieval" in request.url
    assert "code_challenge" not in request.url


async def test_refused_login_and_wrong_secret(ctx, control, served, http) -> None:
    await control.deny_next_authorization()
    with pytest.raises(OAuthFlowError):
        await connect(ctx)
    bad = make_context({**served.env, "CMIS_META_CLIENT_SECRET": "nope"}, http)
    with pytest.raises(Fatal) as caught:
        await connect(bad)
    assert "CLIENT_SECRET" in (caught.value.hint or "")


async def test_refresh_re_exchanges_a_valid_token(ctx, tokens) -> None:
    aged = attrs.evolve(tokens, expires_at=utcnow() + dt.timedelta(days=3))
    fresh = await MetaAuthProvider().refresh(ctx, aged)
    assert fresh.access_token != tokens.access_token
    assert fresh.expires_at > aged.expires_at + dt.timedelta(days=50)
    assert (await MetaAuthProvider().identify(ctx, fresh)).user_id


async def test_an_expired_or_revoked_token_cannot_be_exchanged(ctx, control, tokens) -> None:
    provider = MetaAuthProvider()
    past = attrs.evolve(tokens, expires_at=utcnow() - dt.timedelta(seconds=1))
    with pytest.raises(ReauthRequired):
        await provider.refresh(ctx, past)
    await control.expire_tokens(tokens.access_token)
    with pytest.raises(ReauthRequired) as caught:
        await provider.refresh(ctx, tokens)
    assert not isinstance(caught.value, TokenRejected)


async def test_expiry_warns_days_ahead_then_expires(served, http, tokens) -> None:
    ctx = make_context({**served.env, "CMIS_META_EXPIRY_WARNING_DAYS": "10"}, http)
    provider = MetaAuthProvider()
    ends = min(tokens.expires_at, dt.datetime.fromisoformat(tokens.extra["data_access_expires_at"]))
    assert provider.expiry(ctx, tokens, now=ends - dt.timedelta(days=11)).state == "ok"
    warn = provider.expiry(ctx, tokens, now=ends - dt.timedelta(days=9))
    assert warn.state == "expiring"
    assert warn.renewable
    assert warn.warn_at == ends - dt.timedelta(days=10)
    gone = provider.expiry(ctx, tokens, now=ends)
    assert gone.state == "expired"
    assert not gone.renewable


async def test_calls_carry_appsecret_proof_when_the_app_requires_it(served, api, tokens) -> None:
    await api.http.post(served.base_url + "/_sandbox/meta/limits", json={"require_proof": True})
    assert (await MetaAuthProvider().identify(api, tokens)).user_id
    from cmis_meta.streams import streams

    root = streams()[0]
    async with httpx2.AsyncClient(auth=MetaAuthProvider().http_auth(tokens)) as bare:
        bare_ctx = make_context(served.env, bare)
        with pytest.raises(Fatal, match="appsecret_proof"):
            async for _ in root.read(
                bare_ctx, next(iter(root.partitions(bare_ctx, account=None, state={})))
            ):
                pass
    accounts = [
        p async for p in root.read(api, next(iter(root.partitions(api, account=None, state={}))))
    ]
    assert accounts[0].records


async def test_system_user_token_is_adopted_without_expiry(ctx, served) -> None:
    minted = (await ctx.http.post(served.base_url + "/_sandbox/meta/system_user_token")).json()
    adopted = await MetaAuthProvider().adopt(ctx, minted["access_token"] + "\n")
    assert adopted.expires_at is None
    assert adopted.extra["token_kind"] == "SYSTEM_USER"
    assert "ads_read" in adopted.scopes
    assert MetaAuthProvider().expiry(ctx, adopted).state == "never"
    with pytest.raises(ReauthRequired):
        await MetaAuthProvider().adopt(ctx, "not-a-token")


async def test_revoke_removes_the_grant(ctx, tokens) -> None:
    provider = MetaAuthProvider()
    assert await provider.revoke(ctx, tokens) is True
    with pytest.raises(ReauthRequired):
        await provider.identify(ctx, tokens)
