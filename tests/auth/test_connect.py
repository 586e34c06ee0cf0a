"""Connect flows against the example sandbox: storage, replacement, and every bad callback."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx2
import pytest
from cmis_example.auth import ExampleAuth
from sqlalchemy import func, select, update
from structlog.testing import capture_logs

from cmis_core.auth import connect as flows
from cmis_core.auth import integrations
from cmis_core.auth.states import state_hash
from cmis_core.errors import OAuthFlowError, UsageError
from cmis_core.markers import hookimpl
from cmis_core.store import tables
from cmis_core.types import Identity, IntegrationStatus, PlatformContext, TokenSet

from .conftest import Auth, example_plugin, registry_with


def _counts(auth: Auth) -> tuple[int, int]:
    with auth.store.org(auth.org.id, write=False) as conn:
        n_int = conn.execute(
            select(func.count())
            .select_from(tables.integrations)
            .where(tables.integrations.c.org_id == auth.org.id)
        ).scalar_one()
        n_cred = conn.execute(
            select(func.count())
            .select_from(tables.credentials)
            .where(tables.credentials.c.org_id == auth.org.id)
        ).scalar_one()
    return int(n_int), int(n_cred)


async def test_connect_stores_tokens_identity_and_fires_connected(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    start, params = await auth.consent(http)
    query = parse_qs(urlsplit(start.auth_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/oauth/callback/example"]
    assert len(query["state"][0]) >= 43  # 256 bits, base64url
    with auth.store.system(write=False) as conn:
        stored = conn.execute(select(tables.oauth_states.c.state_hash)).scalars().all()
    assert stored == [state_hash(query["state"][0])]  # hashed, never the state itself

    connected = await flows.complete_connect(
        *auth.args(), platform="example", params=params, http=http
    )
    info = connected.integration
    assert info.status == IntegrationStatus.ACTIVE
    assert info.external_user_id == "sbx_user_1"
    assert set(info.scopes) == {"ads.read", "ads.manage"}
    assert info.access_expires_at is not None
    assert connected.warnings == () and not connected.replaced
    with auth.store.org(auth.org.id, write=False) as conn:
        loaded = integrations.load(conn, auth.vault, "example")
        raw = conn.execute(select(tables.credentials.c.ciphertext)).scalar_one()
    assert loaded is not None and loaded.tokens.refresh_token
    assert loaded.tokens.access_token.encode() not in bytes(raw)
    assert auth.observer.kinds() == ["connected"]
    event = auth.observer.events[0][1]
    assert (event.org, event.platform, event.integration_id) == ("acme", "example", str(info.id))


async def test_reconnect_replaces_never_duplicates(auth: Auth, http: httpx2.AsyncClient) -> None:
    first = await auth.connect(http)
    with auth.store.org(auth.org.id, write=False) as conn:
        before = integrations.load(conn, auth.vault, "example")
    second = await auth.connect(http)
    assert second.replaced and second.integration.id == first.integration.id
    assert _counts(auth) == (1, 1)
    with auth.store.org(auth.org.id, write=False) as conn:
        after = integrations.load(conn, auth.vault, "example")
    assert before is not None and after is not None
    assert after.version == before.version + 1
    assert after.tokens.access_token != before.tokens.access_token


async def test_reconnect_as_another_user_warns(auth: Auth, http: httpx2.AsyncClient) -> None:
    await auth.connect(http)
    with auth.store.org(auth.org.id) as conn:
        conn.execute(update(tables.integrations).values(external_user_id="someone_else"))
    again = await auth.connect(http)
    assert any("different example user" in w for w in again.warnings)


class _NarrowAuth(ExampleAuth):
    """The user unticked a scope on the consent page: the platform reports fewer."""

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        found = await super().identify(ctx, tokens)
        return attrs.evolve(found, scopes=("ads.read",))


class _NarrowPlugin:
    cmis_platforms = staticmethod(example_plugin.cmis_platforms)
    cmis_sandboxes = staticmethod(example_plugin.cmis_sandboxes)

    @hookimpl
    def cmis_auth_providers(self) -> list[_NarrowAuth]:
        return [_NarrowAuth()]


async def test_fewer_scopes_granted_warns(auth: Auth, http: httpx2.AsyncClient) -> None:
    auth.registry = registry_with(("example", _NarrowPlugin()))
    connected = await auth.connect(http, scopes=["ads.read", "ads.manage"])
    assert connected.integration.scopes == ("ads.read",)
    assert connected.warnings == ("fewer scopes were granted than asked for; missing: ads.manage",)


async def test_allowed_extra_redirect_uri_and_refused_one(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    start, params = await auth.consent(
        http, redirect_uri="http://127.0.0.1:8765/oauth/callback/example"
    )
    assert start.redirect_uri == "http://127.0.0.1:8765/oauth/callback/example"
    await flows.complete_connect(*auth.args(), platform="example", params=params, http=http)
    for bad in (
        "http://127.0.0.1:8765/oauth/callback/example/",  # exact match only
        "http://evil.example/oauth/callback/example",
        "http://127.0.0.1:8000/oauth/callback/other",
    ):
        with pytest.raises(UsageError, match="redirect URI is not allowed"):
            await flows.begin_connect(
                *auth.args(), org_id=auth.org.id, platform="example", http=http, redirect_uri=bad
            )


# --------------------------------------------------------------------------- bad callbacks


async def _refused(auth: Auth, http: httpx2.AsyncClient, params: dict[str, str]) -> str:
    with capture_logs() as logs, pytest.raises(OAuthFlowError) as info:
        await flows.complete_connect(*auth.args(), platform="example", params=params, http=http)
    assert _counts(auth) == (0, 0), "a refused callback stored something"
    message = str(info.value)
    for key in ("state", "code"):
        value = params.get(key)
        if value and len(value) > 12:
            assert value not in message
            assert value not in repr(logs)
    return message


async def test_callback_with_error_stores_nothing(auth: Auth, http: httpx2.AsyncClient) -> None:
    await auth.control(http).deny_next_authorization()
    _, params = await auth.consent(http)
    assert params["error"] == "access_denied"
    assert "access_denied" in await _refused(auth, http, params)


async def test_callback_without_state(auth: Auth, http: httpx2.AsyncClient) -> None:
    _, params = await auth.consent(http)
    del params["state"]
    assert "no state" in await _refused(auth, http, params)


async def test_callback_with_unknown_state(auth: Auth, http: httpx2.AsyncClient) -> None:
    _, params = await auth.consent(http)
    params["state"] = params["state"][:-4] + "AAAA"
    assert "unknown state" in await _refused(auth, http, params)


async def test_callback_with_reused_state(auth: Auth, http: httpx2.AsyncClient) -> None:
    _, params = await auth.consent(http)
    await flows.complete_connect(*auth.args(), platform="example", params=params, http=http)
    with auth.store.org(auth.org.id) as conn:  # start from nothing stored again
        conn.execute(tables.integrations.delete())
    assert "already used" in await _refused(auth, http, params)


async def test_callback_with_expired_state(auth: Auth, http: httpx2.AsyncClient) -> None:
    _, params = await auth.consent(http)
    with auth.store.system() as conn:
        conn.execute(
            update(tables.oauth_states).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            )
        )
    assert "expired" in await _refused(auth, http, params)


async def test_state_ttl_comes_from_settings(auth: Auth, http: httpx2.AsyncClient) -> None:
    auth.settings = attrs.evolve(auth.settings, oauth_state_ttl=5)
    start, _ = await auth.consent(http)
    left = (start.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 0 < left <= 5


async def test_callback_for_another_platform(auth: Auth, http: httpx2.AsyncClient) -> None:
    _, params = await auth.consent(http)
    with auth.store.system() as conn:
        conn.execute(update(tables.oauth_states).values(platform="other"))
    assert "issued for other" in await _refused(auth, http, params)


async def test_failed_exchange_stores_nothing(auth: Auth, http: httpx2.AsyncClient) -> None:
    _, params = await auth.consent(http)
    params["code"] = "not-the-code-the-server-issued"
    assert "refused the authorization code" in await _refused(auth, http, params)


async def test_pkce_verifier_is_required_by_the_server(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    """A stolen code is useless without the verifier sealed with the state."""
    _, params = await auth.consent(http)
    with auth.store.system() as conn:
        conn.execute(update(tables.oauth_states).values(verifier_ciphertext=None, key_id=None))
    assert "refused the authorization code" in await _refused(auth, http, params)
