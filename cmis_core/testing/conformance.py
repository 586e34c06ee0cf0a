"""The conformance kit: the tests every platform plugin must pass, against its own sandbox.

A plugin's test suite subclasses :class:`PluginConformance`::

    from cmis_core.testing.conformance import PluginConformance

    class TestExampleConformance(PluginConformance):
        platform = "example"

and pytest runs every section against the plugin's sandbox served on loopback. The plugin
is loaded through its installed entry point (``plugin = "pkg.module"`` or
``"pkg.module:object"`` registers that object instead, for variants under test).

Sections, each a mixin class, so adding one is writing a class and adding it to
:class:`PluginConformance`'s bases:

- :class:`ContractSection`: the records the hooks return are valid and consistent.
- :class:`AuthSection`: the connect flow end to end; an expired access token is
  ``TokenRejected``; a revoked grant on refresh is ``ReauthRequired``; never ``Transient``.
- :class:`StoredAuthSection`: the same through the core and a store: connect -> stored
  (sealed, replaced on reconnect) -> an expired token refreshed once for many workers.
- :class:`WebhookSection`: the handshake; a genuine delivery is accepted and parsed; a
  tampered body, a wrong, missing or stale signature are each ``SignatureInvalid``; and
  through `cmis serve`'s app on a fresh SQLite inbox: the handshake answered, a genuine
  delivery stored once (masked) and a redelivery answered 200, a forged one refused
  with 401 and not stored, a stored delivery processed without failing.
- :class:`SyncSection`: every stream read from the accounts down, and every record the
  sandbox holds (``/_sandbox/expected``) arrives once, valid, money in integer micros.
- :class:`EngineSyncSection`: the core's sync engine stores exactly those records in a
  SQLite store, a second (incremental) sync duplicates none, and a run cut short after
  its first commit is resumed by the next one to the same exact counts.

The kit talks HTTP through :meth:`KitHarness.make_http` only: the one place to swap in the
core's shared client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import importlib.metadata as md
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import pytest
import pytest_asyncio
import structlog

from cmis_core.contract import AuthProvider, Sandbox, SandboxOptions, Stream, WebhookVerifier
from cmis_core.errors import (
    OAuthFlowError,
    ReauthRequired,
    SignatureInvalid,
    TokenRejected,
)
from cmis_core.factory import Registry, load_plugins
from cmis_core.markers import PROJECT
from cmis_core.settings import PlatformSettings, Settings
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.records import natural_key, problems
from cmis_core.testing.serve import RunningSandbox, serve_sandbox
from cmis_core.types import Capability, EntityKind, PlatformContext, TokenSet, WebhookRequest

Records = dict[str, list[Mapping[str, Any]]]


async def raised(call: Awaitable[Any]) -> BaseException | None:
    """The exception ``call`` raises, or ``None`` when it returns."""
    try:
        await call
    except Exception as exc:
        return exc
    return None


def stream_order(streams: Mapping[str, Stream]) -> list[Stream]:
    """Streams with every parent before its children; a cycle or unknown parent is an error."""
    order: list[Stream] = []
    placed: set[str] = set()
    pending = dict(streams)
    while pending:
        ready = [s for s in pending.values() if s.parent is None or s.parent in placed]
        if not ready:
            names = ", ".join(f"{s.name} (parent {s.parent})" for s in pending.values())
            raise AssertionError(f"streams with an unknown or cyclic parent: {names}")
        for stream in sorted(ready, key=lambda s: s.name):
            order.append(stream)
            placed.add(stream.name)
            del pending[stream.name]
    return order


@attrs.frozen
class SyncResult:
    """Everything a full read returned, and what the sandbox says it holds."""

    records: Records
    expected: dict[str, int]


class KitHarness:
    """Fixtures and helpers the sections share. Configure with class attributes."""

    platform: ClassVar[str]
    plugin: ClassVar[str | None] = None
    sandbox_options: ClassVar[SandboxOptions] = SandboxOptions(
        seed=7, size="small", rate_limit=False
    )
    redirect_uri: ClassVar[str] = "http://127.0.0.1:8000/oauth/callback"
    scopes: ClassVar[tuple[str, ...] | None] = None
    # False for platforms that authenticate deliveries with a shared key carried in the
    # body (Google's lead forms) instead of a signature over it: tampering elsewhere in
    # the body is then undetectable by design, and the tampered-body test is skipped.
    webhook_body_signed: ClassVar[bool] = True

    # ------------------------------------------------------------------ the swap point
    def make_http(self, *, auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        """The HTTP client the plugin is driven with (override to use the core's shared one)."""
        return httpx2.AsyncClient(auth=auth, timeout=10.0, follow_redirects=False)

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture(scope="class")
    @classmethod
    def cmis_registry(cls) -> Registry:
        """A fresh registry holding just this plugin (strict: an import error fails loudly)."""
        settings = Settings.from_env({"CMIS_PLUGINS_STRICT": "1"})
        if cls.plugin:
            module_name, _, attr = cls.plugin.partition(":")
            obj: object = importlib.import_module(module_name)
            if attr:
                obj = getattr(obj, attr)
            return load_plugins(settings, entry_points=[], builtins=[(cls.platform, obj)])
        eps = [ep for ep in md.entry_points(group=PROJECT) if ep.name == cls.platform]
        if not eps:
            pytest.fail(
                f"no {PROJECT!r} entry point named {cls.platform!r} is installed: "
                "pip install -e the plugin, or set `plugin = 'pkg.plugin'` on the test class"
            )
        return load_plugins(settings, entry_points=eps)

    @pytest.fixture(scope="class")
    @classmethod
    def cmis_sandbox(cls, cmis_registry: Registry) -> Iterator[RunningSandbox]:
        """The plugin's sandbox, served on a loopback port for the whole class."""
        sandbox: Sandbox = cmis_registry.sandbox(cls.platform)
        with serve_sandbox(sandbox, cls.sandbox_options) as running:
            yield running

    @pytest.fixture(scope="class")
    @classmethod
    def cmis_platform_settings(cls, cmis_sandbox: RunningSandbox) -> PlatformSettings:
        """``CMIS_<P>_*`` settings pointing at the sandbox."""
        return PlatformSettings(platform=cls.platform, environ=dict(cmis_sandbox.env))

    @pytest_asyncio.fixture
    async def cmis_http(self) -> AsyncIterator[httpx2.AsyncClient]:
        async with self.make_http() as client:
            yield client

    @pytest.fixture
    def cmis_context(
        self,
        cmis_registry: Registry,
        cmis_platform_settings: PlatformSettings,
        cmis_http: httpx2.AsyncClient,
    ) -> PlatformContext:
        return self.context(cmis_registry, cmis_platform_settings, cmis_http)

    @pytest.fixture
    def cmis_control(
        self, cmis_sandbox: RunningSandbox, cmis_http: httpx2.AsyncClient
    ) -> SandboxControl:
        return SandboxControl(cmis_sandbox.base_url, cmis_http, platform=self.platform)

    @pytest_asyncio.fixture
    async def cmis_tokens(self, cmis_registry: Registry, cmis_context: PlatformContext) -> TokenSet:
        """Tokens from a full connect flow against the sandbox (a fresh grant per test)."""
        return await self.connect(cmis_registry, cmis_context)

    @pytest.fixture(scope="class")
    @classmethod
    def cmis_synced(
        cls,
        cmis_registry: Registry,
        cmis_sandbox: RunningSandbox,
        cmis_platform_settings: PlatformSettings,
    ) -> SyncResult:
        """One full read of every stream (run once per class, in its own event loop)."""

        kit = cls()

        async def run() -> SyncResult:
            async with kit.make_http() as http:
                ctx = kit.context(cmis_registry, cmis_platform_settings, http)
                tokens = await kit.connect(cmis_registry, ctx)
                control = SandboxControl(cmis_sandbox.base_url, http, platform=cls.platform)
                expected = await control.expected()
            records = await kit.read_all(cmis_registry, cmis_platform_settings, tokens)
            return SyncResult(records=records, expected=expected)

        return asyncio.run(run())

    # ------------------------------------------------------------------ helpers
    def context(
        self, registry: Registry, settings: PlatformSettings, http: httpx2.AsyncClient
    ) -> PlatformContext:
        return PlatformContext(
            platform=registry.platform(self.platform),
            settings=settings,
            http=http,
            log=structlog.get_logger("cmis.testing.kit").bind(platform=self.platform),
        )

    def provider(self, registry: Registry) -> AuthProvider:
        return registry.auth_provider(self.platform)

    def api_auth(self, registry: Registry, tokens: TokenSet) -> httpx2.Auth:
        """How API calls present ``tokens``: the provider's ``http_auth``, else a bearer header."""
        from cmis_core.auth.oauth2 import BearerAuth

        make = getattr(self.provider(registry), "http_auth", None)
        auth = make(tokens) if make is not None else None
        return auth if isinstance(auth, httpx2.Auth) else BearerAuth(tokens.access_token)

    async def authorize(
        self, registry: Registry, ctx: PlatformContext
    ) -> tuple[Any, dict[str, str], str]:
        """begin, then follow the authorization URL: the request, the callback params, the state."""
        state = secrets.token_urlsafe(16)
        scopes = self.scopes if self.scopes is not None else ctx.platform.scopes
        request = await self.provider(registry).begin(
            ctx, redirect_uri=self.redirect_uri, state=state, scopes=scopes
        )
        response = await ctx.http.get(request.url)
        assert response.status_code in (302, 303), (
            f"the authorization URL answered {response.status_code}, not a redirect: "
            f"{response.text[:300]}"
        )
        location = response.headers["location"]
        assert location.startswith(self.redirect_uri), "the consent redirected elsewhere"
        return request, dict(parse_qsl(urlsplit(location).query)), state

    async def connect(self, registry: Registry, ctx: PlatformContext) -> TokenSet:
        """The whole connect flow: begin -> consent -> callback -> complete."""
        request, params, state = await self.authorize(registry, ctx)
        assert params.get("state") == state, "the callback did not carry the state back"
        assert "code" in params, f"the consent was refused: {params.get('error')}"
        return await self.provider(registry).complete(
            ctx, params=params, request=request, redirect_uri=self.redirect_uri
        )

    async def read_stream(
        self, ctx: PlatformContext, stream: Stream, account: Mapping[str, Any] | None
    ) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        for partition in stream.partitions(ctx, account=account, state={}):
            async for page in stream.read(ctx, partition):
                out.extend(page.records)
        return out

    async def read_all(
        self, registry: Registry, settings: PlatformSettings, tokens: TokenSet
    ) -> Records:
        """Every stream, parents first, each child read once per parent record."""
        records: Records = {}
        async with self.make_http(auth=self.api_auth(registry, tokens)) as http:
            ctx = self.context(registry, settings, http)
            for stream in stream_order(registry.streams_of(self.platform)):
                parents: list[Mapping[str, Any] | None] = (
                    [None] if stream.parent is None else list(records[stream.parent])
                )
                found: list[Mapping[str, Any]] = []
                for parent in parents:
                    found.extend(await self.read_stream(ctx, stream, parent))
                records[stream.name] = found
        return records

    def capabilities(self, registry: Registry) -> frozenset[Capability]:
        return registry.platform(self.platform).capabilities


# ============================================================================ sections


class ContractSection(KitHarness):
    """The records the hooks return are valid and consistent."""

    def test_contract_platform_record(self, cmis_registry: Registry) -> None:
        record = cmis_registry.platform(self.platform)
        assert record.name == self.platform
        assert record.display_name.strip(), "a platform needs a display name"
        assert record.classify is not None, "a platform must classify its error answers"
        assert urlsplit(record.base_url).scheme == "https"
        assert record.lookback_days >= 1

    def test_contract_capability_records(self, cmis_registry: Registry) -> None:
        provider = cmis_registry.auth_provider(self.platform)
        assert isinstance(provider, AuthProvider)
        assert provider.platform == self.platform
        assert provider.flow in ("oauth2", "oauth1")
        if self.platform in cmis_registry.webhook_verifiers:
            verifier = cmis_registry.webhook_verifier(self.platform)
            assert isinstance(verifier, WebhookVerifier)
            assert verifier.platform == self.platform
        sandbox = cmis_registry.sandbox(self.platform)
        env = sandbox.env("http://127.0.0.1:9")
        prefix = f"CMIS_{self.platform.upper()}_"
        assert all(k.startswith(prefix) for k in env), f"sandbox settings must be {prefix}*"
        assert env.get(prefix + "API_URL") == "http://127.0.0.1:9"

    def test_contract_streams(self, cmis_registry: Registry) -> None:
        streams = cmis_registry.streams_of(self.platform)
        assert streams, "a plugin offering sync must offer streams"
        for name, stream in streams.items():
            assert isinstance(stream, Stream)
            assert stream.name == name
            assert stream.platform == self.platform
            assert EntityKind(stream.entity) in EntityKind
        stream_order(streams)  # parents exist and form no cycle
        roots = [s for s in streams.values() if s.parent is None]
        assert any(s.entity == EntityKind.AD_ACCOUNT for s in roots), (
            "ad accounts must be read first: a root stream fills ad_account"
        )


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


def _flip_middle(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


class WebhookSection(KitHarness):
    """Genuine deliveries are accepted; anything else is SignatureInvalid."""

    @pytest.fixture
    def cmis_verifier(self, cmis_registry: Registry) -> WebhookVerifier:
        if self.platform not in cmis_registry.webhook_verifiers:
            pytest.skip("the plugin offers no webhooks")
        return cmis_registry.webhook_verifier(self.platform)

    @pytest.mark.asyncio
    async def test_webhooks_handshake(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        shake = await cmis_control.webhook_handshake()
        if shake is None:
            pytest.skip("the platform has no handshake")
        request, status, body = shake
        answer = cmis_verifier.handshake(request, cmis_platform_settings)
        assert answer is not None, "the handshake was not recognised"
        assert (answer.status, answer.body) == (status, body)

    @pytest.mark.asyncio
    async def test_webhooks_sample_delivery_accepted(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, _ = await cmis_control.webhook_sample()
        assert cmis_verifier.handshake(request, cmis_platform_settings) is None
        cmis_verifier.verify(request, cmis_platform_settings)
        events = cmis_verifier.parse(cmis_verifier.mask(request.body))
        assert events, "a genuine delivery parsed into no events"
        assert {e.platform for e in events} == {self.platform}
        again = attrs.evolve(request)
        assert cmis_verifier.dedupe_key(again) == cmis_verifier.dedupe_key(request)
        other, _ = await cmis_control.webhook_sample()
        assert cmis_verifier.dedupe_key(other) != cmis_verifier.dedupe_key(request)

    @pytest.mark.asyncio
    async def test_webhooks_tampered_body_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        if not self.webhook_body_signed:
            pytest.skip("the platform authenticates deliveries with a key, not a body signature")
        request, _ = await cmis_control.webhook_sample()
        for body in (_flip_middle(request.body), request.body + b" "):
            with pytest.raises(SignatureInvalid):
                cmis_verifier.verify(attrs.evolve(request, body=body), cmis_platform_settings)

    @pytest.mark.asyncio
    async def test_webhooks_wrong_signature_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, _ = await cmis_control.webhook_sample(signature="wrong")
        with pytest.raises(SignatureInvalid):
            cmis_verifier.verify(request, cmis_platform_settings)

    @pytest.mark.asyncio
    async def test_webhooks_missing_signature_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, _ = await cmis_control.webhook_sample(signature="none")
        with pytest.raises(SignatureInvalid):
            cmis_verifier.verify(request, cmis_platform_settings)

    @pytest.mark.asyncio
    async def test_webhooks_stale_timestamp_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, timestamped = await cmis_control.webhook_sample(timestamp_offset=-3600)
        if not timestamped:
            pytest.skip("the platform signs no timestamp")
        with pytest.raises(SignatureInvalid):
            cmis_verifier.verify(request, cmis_platform_settings)

    # ---------------------------------------------------------------- through the service
    @pytest.fixture
    def cmis_webhook_service(
        self, cmis_registry: Registry, cmis_sandbox: RunningSandbox, tmp_path: Path
    ) -> Iterator[WebhookService]:
        """`cmis serve`'s app on a fresh SQLite inbox, with the sandbox's settings."""
        from starlette.testclient import TestClient

        from cmis_core.service.app import create_app
        from cmis_core.store import open_store

        settings = Settings.from_env(
            {
                **cmis_sandbox.env,
                "CMIS_HOME": str(tmp_path),
                "CMIS_DATABASE_URL": f"sqlite:///{tmp_path / 'kit.db'}",
            }
        )
        store = open_store(settings)
        try:
            app = create_app(settings, store=store, registry=cmis_registry)
            with TestClient(app) as client:
                yield WebhookService(client=client, store=store, settings=settings)
        finally:
            store.close()

    @pytest.mark.asyncio
    async def test_webhooks_service_answers_the_handshake(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        shake = await cmis_control.webhook_handshake()
        if shake is None:
            pytest.skip("the platform has no handshake")
        request, status, body = shake
        answer = cmis_webhook_service.send(request)
        assert (answer.status_code, answer.content) == (status, body)
        assert cmis_webhook_service.rows() == [], "a handshake is not a delivery"

    @pytest.mark.asyncio
    async def test_webhooks_service_stores_a_genuine_delivery_once(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        request, _ = await cmis_control.webhook_sample()
        first = cmis_webhook_service.send(request)
        assert first.status_code == 200, f"a genuine delivery was answered {first.status_code}"
        assert first.json() == {"status": "stored"}
        again = cmis_webhook_service.send(request)
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
        (row,) = cmis_webhook_service.rows()
        assert row["body"] == cmis_verifier.mask(request.body), "the stored body is the masked one"
        assert row["dedupe_key"]

    @pytest.mark.asyncio
    async def test_webhooks_service_refuses_a_forged_delivery(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        request, _ = await cmis_control.webhook_sample(signature="wrong")
        answer = cmis_webhook_service.send(request)
        assert answer.status_code == 401, f"a forged delivery was answered {answer.status_code}"
        assert cmis_webhook_service.rows() == []

    @pytest.mark.asyncio
    async def test_webhooks_stored_delivery_is_processable(
        self,
        cmis_registry: Registry,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        from cmis_core.webhooks.process import InboxProcessor

        request, _ = await cmis_control.webhook_sample()
        assert cmis_webhook_service.send(request).status_code == 200
        processor = InboxProcessor(
            cmis_webhook_service.store, cmis_registry, cmis_webhook_service.settings
        )
        report = await processor.run()
        (row,) = cmis_webhook_service.rows()
        # no organisation routes the sandbox's accounts here: unroutable (or processed,
        # for events that need no route); never failed
        assert row["status"] in ("unroutable", "processed"), (
            f"the stored delivery could not be processed: {row['error']}"
        )
        assert report.failed == 0


@attrs.frozen(kw_only=True)
class WebhookService:
    """The service app under test, its store and settings (for :class:`WebhookSection`)."""

    client: Any
    store: Any
    settings: Settings

    def send(self, request: WebhookRequest) -> Any:
        """Send ``request`` to the app as the platform would."""
        return self.client.request(
            request.method,
            request.path,
            params=dict(request.query),
            headers=dict(request.headers),
            content=request.body,
        )

    def rows(self) -> list[dict[str, Any]]:
        """The inbox rows (body as bytes)."""
        from sqlalchemy import select

        from cmis_core.store.tables import webhook_events

        with self.store.system(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(webhook_events))]
        for row in rows:
            row["body"] = None if row["body"] is None else bytes(row["body"])
        return rows


class SyncSection(KitHarness):
    """A full read from the accounts down returns exactly what the sandbox holds."""

    def test_sync_streams_match_the_ground_truth(self, cmis_synced: SyncResult) -> None:
        assert set(cmis_synced.expected) == set(cmis_synced.records), (
            "the sandbox's /_sandbox/expected must name every stream, and only those"
        )

    def test_sync_every_record_arrives_once(
        self, cmis_registry: Registry, cmis_synced: SyncResult
    ) -> None:
        streams = cmis_registry.streams_of(self.platform)
        for name, records in cmis_synced.records.items():
            keys = Counter(natural_key(EntityKind(streams[name].entity), r) for r in records)
            twice = [k for k, n in keys.items() if n > 1]
            assert not twice, (
                f"{name}: {len(twice)} records arrived more than once, e.g. {twice[0]}"
            )
            held = cmis_synced.expected.get(name)
            assert len(keys) == held, f"{name}: read {len(keys)} records, the sandbox holds {held}"

    def test_sync_records_are_valid(self, cmis_registry: Registry, cmis_synced: SyncResult) -> None:
        streams = cmis_registry.streams_of(self.platform)
        for name, records in cmis_synced.records.items():
            entity = EntityKind(streams[name].entity)
            for record in records:
                found = problems(entity, record)
                assert not found, f"{name} record {record.get('external_id')}: {'; '.join(found)}"

    def test_sync_children_belong_to_read_accounts(
        self, cmis_registry: Registry, cmis_synced: SyncResult
    ) -> None:
        streams = cmis_registry.streams_of(self.platform)
        accounts = {
            r["external_id"]
            for name, rs in cmis_synced.records.items()
            if streams[name].entity == EntityKind.AD_ACCOUNT
            for r in rs
        }
        for name, records in cmis_synced.records.items():
            if streams[name].entity == EntityKind.AD_ACCOUNT:
                continue
            strays = {r.get("account_id") for r in records} - accounts
            assert not strays, (
                f"{name}: records of accounts never read: {sorted(map(str, strays))[:3]}"
            )


class _FakeTime:
    """A clock that advances only when the client sleeps (waits recorded, not slept)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class EngineSyncSection(KitHarness):
    """The core's sync engine over the sandbox: full, then incremental, then a run cut
    short and resumed; every table ends with exactly the records the sandbox holds."""

    @pytest.fixture
    def cmis_engine_store(self, tmp_path: Any) -> Iterator[Any]:
        from cmis_core.store import open_store

        settings = Settings.from_env({"CMIS_HOME": str(tmp_path)})
        with open_store(settings) as store:
            yield store

    def _engine_org(self, store: Any, slug: str) -> int:
        from sqlalchemy import insert

        from cmis_core.store import tables

        org = store.create_org(slug)
        with store.org(org.id) as conn:
            conn.execute(
                insert(tables.integrations).values(
                    org_id=org.id, platform=self.platform, status="active"
                )
            )
        return int(org.id)

    async def _engine_sync(
        self,
        store: Any,
        registry: Registry,
        sandbox: RunningSandbox,
        org_id: int,
        tokens: TokenSet,
        **kwargs: Any,
    ) -> Any:
        from cmis_core.http import HttpConfig, HttpHub, MemoryStore
        from cmis_core.sync.engine import sync_integration

        settings = Settings.from_env({**sandbox.env, "CMIS_HOME": "/nonexistent"})
        clock = _FakeTime()

        async def provide() -> TokenSet:
            return tokens

        async with HttpHub(
            HttpConfig.from_settings(settings),
            store=MemoryStore(),
            sleep=clock.sleep,
            clock=clock.time,
        ) as hub:
            return await sync_integration(
                store,
                registry,
                settings,
                org_id=org_id,
                platform=self.platform,
                hub=hub,
                tokens_provider=provide,
                sleep=clock.sleep,
                **kwargs,
            )

    def _engine_expected(self, registry: Registry, expected: Mapping[str, int]) -> Counter[str]:
        from cmis_core.sync.writer import TABLES

        streams = registry.streams_of(self.platform)
        by_table: Counter[str] = Counter()
        for name, count in expected.items():
            by_table[TABLES[EntityKind(streams[name].entity)].name] += count
        return by_table

    def _engine_stored(self, store: Any, org_id: int) -> Counter[str]:
        from sqlalchemy import func, select

        from cmis_core.sync.writer import TABLES

        found: Counter[str] = Counter()
        with store.org(org_id, write=False) as conn:
            for table in TABLES.values():
                found[table.name] = int(
                    conn.execute(
                        select(func.count()).select_from(table).where(table.c.org_id == org_id)
                    ).scalar_one()
                )
        return +found

    @pytest.mark.asyncio
    async def test_sync_engine_full_then_incremental(
        self,
        cmis_registry: Registry,
        cmis_sandbox: RunningSandbox,
        cmis_control: SandboxControl,
        cmis_tokens: TokenSet,
        cmis_engine_store: Any,
    ) -> None:
        store = cmis_engine_store
        org_id = self._engine_org(store, "kit-full")
        want = self._engine_expected(cmis_registry, await cmis_control.expected())
        first = await self._engine_sync(store, cmis_registry, cmis_sandbox, org_id, cmis_tokens)
        assert first.status == "succeeded", first.to_json()
        assert self._engine_stored(store, org_id) == want
        second = await self._engine_sync(store, cmis_registry, cmis_sandbox, org_id, cmis_tokens)
        assert second.status == "succeeded", second.to_json()
        assert self._engine_stored(store, org_id) == want, "the second sync duplicated rows"

    @pytest.mark.asyncio
    async def test_sync_engine_resumes_a_run_cut_short(
        self,
        cmis_registry: Registry,
        cmis_sandbox: RunningSandbox,
        cmis_control: SandboxControl,
        cmis_tokens: TokenSet,
        cmis_engine_store: Any,
    ) -> None:
        store = cmis_engine_store
        org_id = self._engine_org(store, "kit-resume")
        want = self._engine_expected(cmis_registry, await cmis_control.expected())
        committed = asyncio.Event()
        first = asyncio.create_task(
            self._engine_sync(
                store,
                cmis_registry,
                cmis_sandbox,
                org_id,
                cmis_tokens,
                progress=lambda stream, n: committed.set(),
            )
        )
        await asyncio.wait(
            [first, asyncio.create_task(committed.wait())],
            timeout=60,
            return_when=asyncio.FIRST_COMPLETED,
        )
        first.cancel()  # as a kill would: the run row stays open
        with contextlib.suppress(asyncio.CancelledError):
            await first
        again = await self._engine_sync(store, cmis_registry, cmis_sandbox, org_id, cmis_tokens)
        assert again.status == "succeeded", again.to_json()
        assert self._engine_stored(store, org_id) == want


class PluginConformance(
    ContractSection,
    AuthSection,
    StoredAuthSection,
    WebhookSection,
    SyncSection,
    EngineSyncSection,
):
    """Every section. Subclass as ``TestXConformance`` with ``platform = "x"``."""
