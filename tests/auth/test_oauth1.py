"""OAuth 1.0a (X Ads) through the same hooks and flows, against the fake OAuth 1.0a server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest

from cmis_core.auth import connect as flows
from cmis_core.auth import integrations
from cmis_core.auth.oauth1 import OAuth1Provider
from cmis_core.auth.tokens import on_token_rejected, platform_context
from cmis_core.errors import OAuthFlowError, ReauthRequired, TokenRejected
from cmis_core.markers import hookimpl
from cmis_core.settings import Settings
from cmis_core.store import open_store
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.sandbox.oauth1 import OAuth1Config, OAuth1Server
from cmis_core.testing.serve import serve
from cmis_core.types import Capability, IntegrationStatus, Platform, TokenSet
from cmis_core.vault import Vault

from .conftest import KEY, Auth, make_observer, registry_with

CALLBACK = "http://127.0.0.1:8000/oauth/callback/xads"


class XAuth(OAuth1Provider):
    platform = "xads"
    invalidate_path = "/1.1/oauth/invalidate_token"
    identify_path = "/1.1/account/verify_credentials.json"


class XPlugin:
    @hookimpl
    def cmis_platforms(self) -> list[Platform]:
        return [
            Platform(
                name="xads",
                display_name="X Ads (test)",
                api_version="12",
                base_url="https://ads-api.x.com",
                capabilities={Capability.OAUTH1, Capability.REVOKE},
            )
        ]

    @hookimpl
    def cmis_auth_providers(self) -> list[XAuth]:
        return [XAuth()]


@pytest.fixture
def server() -> OAuth1Server:
    return OAuth1Server(
        OAuth1Config(consumer_key="ck", consumer_secret="cs-secret", callbacks=(CALLBACK,))
    )


@pytest.fixture
def xauth(database: TestDatabase, server: OAuth1Server) -> Iterator[Auth]:
    with serve(server.app()) as base:
        settings = Settings.from_env(
            {
                **database.environ(),
                "CMIS_SECRET_KEYS": KEY,
                "CMIS_XADS_CLIENT_ID": "ck",
                "CMIS_XADS_CLIENT_SECRET": "cs-secret",
                "CMIS_XADS_API_URL": base,
                "CMIS_XADS_AUTH_URL": base,
                "CMIS_XADS_TOKEN_URL": base,
            }
        )
        observer, hooks = make_observer()
        with contextlib.closing(open_store(settings)) as store:
            yield Auth(
                store=store,
                vault=Vault.from_settings(settings),
                registry=registry_with(("xads", XPlugin()), ("observer", hooks)),
                settings=settings,
                sandbox=None,  # type: ignore[arg-type]
                org=store.create_org("acme"),
                observer=observer,
                database=database,
                platform="xads",
            )


async def consent(auth: Auth, http: httpx2.AsyncClient) -> dict[str, str]:
    start = await flows.begin_connect(*auth.args(), org_id=auth.org.id, platform="xads", http=http)
    assert start.redirect_uri == CALLBACK
    answer = await http.get(start.auth_url)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(location).query))


def stored(auth: Auth) -> integrations.StoredTokens:
    with auth.store.org(auth.org.id, write=False) as conn:
        found = integrations.load(conn, auth.vault, "xads")
    assert found is not None
    return found


async def test_oauth1_connect_identify_and_sign(
    xauth: Auth, http: httpx2.AsyncClient, server: OAuth1Server
) -> None:
    params = await consent(xauth, http)
    assert set(params) == {"oauth_token", "oauth_verifier"}
    done = await flows.complete_connect(*xauth.args(), platform="xads", params=params, http=http)
    assert done.integration.external_user_id == "1001"
    assert done.integration.external_user_name == "sandbox_user"
    assert done.integration.access_expires_at is None
    tokens = stored(xauth).tokens
    assert tokens.token_secret and tokens.token_type == "oauth1"
    assert tokens.token_secret not in repr(tokens)
    # API calls are signed with the consumer and the token (query parameters included)
    auth = XAuth().http_auth(tokens, xauth.settings.platform("xads"))
    base = xauth.settings.platform("xads").base_url("api", "")
    answer = await http.get(base + XAuth.identify_path + "?include_email=false", auth=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id_str"] == "1001"
    assert xauth.observer.kinds() == ["connected"]


async def test_oauth1_bad_callbacks_store_nothing(
    xauth: Auth, http: httpx2.AsyncClient, server: OAuth1Server
) -> None:
    params = await consent(xauth, http)
    wrong = {**params, "oauth_verifier": "not-the-verifier"}
    with pytest.raises(OAuthFlowError, match="refused"):
        await flows.complete_connect(*xauth.args(), platform="xads", params=wrong, http=http)
    with pytest.raises(OAuthFlowError, match="already used"):  # the request token is spent
        await flows.complete_connect(*xauth.args(), platform="xads", params=params, http=http)
    with pytest.raises(OAuthFlowError, match="unknown state"):
        await flows.complete_connect(
            *xauth.args(),
            platform="xads",
            params={"oauth_token": "forged", "oauth_verifier": "x"},
            http=http,
        )
    server.deny_next()
    denied = await consent(xauth, http)
    assert "denied" in denied
    with pytest.raises(OAuthFlowError, match="denied"):
        await flows.complete_connect(*xauth.args(), platform="xads", params=denied, http=http)
    with xauth.store.org(xauth.org.id, write=False) as conn:
        assert integrations.find(conn, "xads") is None


async def test_oauth1_wrong_consumer_secret_is_refused(
    xauth: Auth, http: httpx2.AsyncClient, server: OAuth1Server
) -> None:
    env = dict(xauth.settings.environ, CMIS_XADS_CLIENT_SECRET="wrong")
    xauth.settings = Settings.from_env(env)
    with pytest.raises(OAuthFlowError, match="refused the connect request"):
        await flows.begin_connect(*xauth.args(), org_id=xauth.org.id, platform="xads", http=http)
    assert server.refused == ["invalid signature"]


async def test_oauth1_rejected_token_needs_reconnect_and_revoke(
    xauth: Auth, http: httpx2.AsyncClient, server: OAuth1Server
) -> None:
    params = await consent(xauth, http)
    await flows.complete_connect(*xauth.args(), platform="xads", params=params, http=http)
    tokens: TokenSet = stored(xauth).tokens
    ctx = platform_context(xauth.registry, xauth.settings, "xads", http=http)
    provider = XAuth()
    assert await provider.revoke(ctx, tokens) is True
    with pytest.raises(TokenRejected):
        await provider.identify(ctx, tokens)
    with pytest.raises(ReauthRequired) as info:
        await on_token_rejected(*xauth.args(), xauth.org.id, "xads", http=http, rejected=tokens)
    assert "cmis connect xads --org acme" in (info.value.hint or "")
    assert stored(xauth).integration.status == IntegrationStatus.NEEDS_REAUTH
    assert xauth.observer.kinds() == ["connected", "needs_reauth"]
    # disconnect: the platform's invalidation is tried, the credentials go regardless
    done = await flows.disconnect(*xauth.args(), org_id=xauth.org.id, platform="xads", http=http)
    assert done.revoked is False and done.revoke_error == "xads refused the access token (HTTP 401)"
    with xauth.store.org(xauth.org.id, write=False) as conn:
        assert integrations.load(conn, xauth.vault, "xads") is None
