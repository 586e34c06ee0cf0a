""":class:`AuthSection`: the connect flow and the error contract of a plugin's auth provider;
:class:`StoredAuthSection`: the same through the core and a store (:class:`KitStore`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import pytest

from cmis_core.errors import OAuthFlowError, ReauthRequired, TokenRejected
from cmis_core.factory import Registry
from cmis_core.settings import Settings
from cmis_core.testing.conformance.harness import KitHarness, raised, stream_order
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.serve import RunningSandbox
from cmis_core.types import Capability, PlatformContext, TokenSet


class AuthSection(KitHarness):
    """The connect flow end to end, and the error contract the token refresher relies on."""

    @pytest.mark.asyncio
    async def test_auth_connect_flow(
        self, cmis_registry: Registry, cmis_context: PlatformContext, cmis_tokens: TokenSet
    ) -> None:
        assert cmis_tokens.access_token
        assert cmis_tokens.access_token not in repr(cmis_tokens)
        identity = await self.provider(cmis_registry).identify(cmis_context, cmis_tokens)
        assert identity.user_id

    @pytest.mark.asyncio
    async def test_auth_denied_consent_is_an_oauth_flow_error(
        self, cmis_registry: Registry, cmis_context: PlatformContext, cmis_control: SandboxControl
    ) -> None:
        await cmis_control.deny_next_authorization()
        request, params, _ = await self.authorize(cmis_registry, cmis_context)
        assert "code" not in params
        error = await raised(
            self.provider(cmis_registry).complete(
                cmis_context, params=params, request=request, redirect_uri=self.redirect_uri
            )
        )
        assert isinstance(error, OAuthFlowError), f"a refused consent raised {error!r}"

    @pytest.mark.asyncio
    async def test_auth_expired_access_token_is_token_rejected(
        self,
        cmis_registry: Registry,
        cmis_context: PlatformContext,
        cmis_control: SandboxControl,
        cmis_tokens: TokenSet,
    ) -> None:
        assert await cmis_control.expire_tokens(cmis_tokens.access_token) == 1
        error = await raised(self.provider(cmis_registry).identify(cmis_context, cmis_tokens))
        assert isinstance(error, TokenRejected), (
            "an expired access token must surface as TokenRejected (refresh once, then retry), "
            f"got {type(error).__name__}: {error}"
        )
        root = stream_order(cmis_registry.streams_of(self.platform))[0]
        async with self.make_http(auth=self.api_auth(cmis_registry, cmis_tokens)) as http:
            ctx = attrs.evolve(cmis_context, http=http)
            error = await raised(self.read_stream(ctx, root, None))
        assert isinstance(error, TokenRejected), (
            f"reading {root.name} with an expired token raised {type(error).__name__}: {error}"
        )

    @pytest.mark.asyncio
    async def test_auth_refresh_gives_new_working_tokens(
        self, cmis_registry: Registry, cmis_context: PlatformContext, cmis_tokens: TokenSet
    ) -> None:
        if Capability.REFRESH not in self.capabilities(cmis_registry):
            pytest.skip("the platform has no refresh")
        provider = self.provider(cmis_registry)
        fresh = await provider.refresh(cmis_context, cmis_tokens)
        assert fresh.access_token != cmis_tokens.access_token
        assert fresh.refresh_token, "the refresh token must be kept (or its rotation stored)"
        assert (await provider.identify(cmis_context, fresh)).user_id

    @pytest.mark.asyncio
    async def test_auth_revoked_grant_on_refresh_is_reauth_required(
        self,
        cmis_registry: Registry,
        cmis_context: PlatformContext,
        cmis_control: SandboxControl,
        cmis_tokens: TokenSet,
    ) -> None:
        if Capability.REFRESH not in self.capabilities(cmis_registry):
            pytest.skip("the platform has no refresh")
        assert await cmis_control.revoke(cmis_tokens.refresh_token or cmis_tokens.access_token) == 1
        error = await raised(self.provider(cmis_registry).refresh(cmis_context, cmis_tokens))
        why = (
            "a refresh refused because the grant is gone must be ReauthRequired "
            f"(the user must reconnect), got {type(error).__name__}: {error}"
        )
        assert isinstance(error, ReauthRequired), why
        assert not isinstance(error, TokenRejected), why

    @pytest.mark.asyncio
    async def test_auth_revoke_ends_the_grant(
        self, cmis_registry: Registry, cmis_context: PlatformContext, cmis_tokens: TokenSet
    ) -> None:
        if Capability.REVOKE not in self.capabilities(cmis_registry):
            pytest.skip("the platform has no revocation")
        provider = self.provider(cmis_registry)
        assert await provider.revoke(cmis_context, cmis_tokens) is True
        error = await raised(provider.identify(cmis_context, cmis_tokens))
        assert isinstance(error, ReauthRequired), f"a revoked token still worked: {error!r}"


@attrs.frozen(kw_only=True)
class KitStore:
    """A SQLite store, vault and settings pointing at the sandbox, for the store tests."""

    store: Any
    vault: Any
    settings: Settings
    org_id: int

    def args(self, registry: Registry) -> tuple[Any, Any, Registry, Settings]:
        return (self.store, self.vault, registry, self.settings)


class StoredAuthSection(KitHarness):
    """Through the core: connect -> stored (sealed) -> refreshed once for many workers."""

    @pytest.fixture
    def cmis_auth_store(self, cmis_sandbox: RunningSandbox, tmp_path: Any) -> Iterator[KitStore]:
        from cmis_core.store import open_store
        from cmis_core.vault import SecretKey, Vault

        env = {
            **cmis_sandbox.env,
            "CMIS_HOME": str(tmp_path),
            "CMIS_SECRET_KEYS": SecretKey.generate().encoded(),
        }
        settings = Settings.from_env(env)
        store = open_store(settings)
        try:
            org = store.create_org("kit")
            yield KitStore(
                store=store, vault=Vault.from_settings(settings), settings=settings, org_id=org.id
            )
        finally:
            store.close()

    async def connect_stored(
        self, registry: Registry, kit: KitStore, http: httpx2.AsyncClient
    ) -> Any:
        from cmis_core.auth import connect as flows

        start = await flows.begin_connect(
            *kit.args(registry),
            org_id=kit.org_id,
            platform=self.platform,
            http=http,
            scopes=self.scopes,
        )
        response = await http.get(start.auth_url)
        assert response.status_code in (302, 303), "the consent URL did not redirect"
        params = dict(parse_qsl(urlsplit(response.headers["location"]).query))
        return await flows.complete_connect(
            *kit.args(registry), platform=self.platform, params=params, http=http
        )

    def stored(self, kit: KitStore) -> Any:
        from cmis_core.auth import integrations

        with kit.store.org(kit.org_id, write=False) as conn:
            return integrations.load(conn, kit.vault, self.platform)

    @pytest.mark.asyncio
    async def test_auth_connect_is_stored_sealed(
        self, cmis_registry: Registry, cmis_auth_store: KitStore, cmis_http: httpx2.AsyncClient
    ) -> None:
        from cmis_core.store import tables

        connected = await self.connect_stored(cmis_registry, cmis_auth_store, cmis_http)
        assert connected.integration.external_user_id, "identify() gave no user id"
        assert str(connected.integration.status) == "active"
        found = self.stored(cmis_auth_store)
        assert found is not None and found.tokens.access_token
        with cmis_auth_store.store.org(cmis_auth_store.org_id, write=False) as conn:
            sealed = conn.execute(tables.credentials.select()).one().ciphertext
        assert found.tokens.access_token.encode() not in bytes(sealed)
        again = await self.connect_stored(cmis_registry, cmis_auth_store, cmis_http)
        assert again.replaced and again.integration.id == connected.integration.id

    @pytest.mark.asyncio
    async def test_auth_refresh_is_single_flight(
        self, cmis_registry: Registry, cmis_auth_store: KitStore, cmis_http: httpx2.AsyncClient
    ) -> None:
        from cmis_core.auth import integrations
        from cmis_core.auth.tokens import RefreshPolicy, fresh_tokens, renewable
        from cmis_core.types import utcnow

        kit = cmis_auth_store
        await self.connect_stored(cmis_registry, kit, cmis_http)
        before = self.stored(kit)
        if not renewable(cmis_registry.platform(self.platform), before.tokens):
            pytest.skip("the platform's tokens cannot be renewed without the user")
        # About to expire (not yet expired): refresh-token platforms refresh it, and
        # exchange-only ones (Meta) can still exchange a token that is valid.
        expired = attrs.evolve(before.tokens, expires_at=utcnow() + dt.timedelta(seconds=30))
        with kit.store.org(kit.org_id) as conn:
            integrations.write_tokens(
                conn, kit.vault, before.integration, expired, expected_version=before.version
            )
        policy = RefreshPolicy(lease_seconds=10, backoff=0.05, poll=0.02)

        def worker() -> str:
            async def run() -> str:
                async with self.make_http() as http:
                    tokens = await fresh_tokens(
                        *kit.args(cmis_registry),
                        kit.org_id,
                        self.platform,
                        http=http,
                        policy=policy,
                    )
                return tokens.access_token

            return asyncio.run(run())

        results = await asyncio.gather(*(asyncio.to_thread(worker) for _ in range(8)))
        after = self.stored(kit)
        assert set(results) == {after.tokens.access_token}, "workers ended with different tokens"
        assert after.version == before.version + 2, "more than one refresh was written"
        assert after.tokens.access_token != before.tokens.access_token
        ctx = self.context(cmis_registry, kit.settings.platform(self.platform), cmis_http)
        assert (await self.provider(cmis_registry).identify(ctx, after.tokens)).user_id
