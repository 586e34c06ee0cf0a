"""What the sections share: :class:`KitHarness` (fixtures and helpers, configured with
class attributes), :class:`SyncResult`, and the helpers :func:`raised` and
:func:`stream_order`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata as md
import secrets
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import pytest
import pytest_asyncio
import structlog

from cmis_core.contract import AuthProvider, Sandbox, SandboxOptions, Stream
from cmis_core.errors import PluginError
from cmis_core.factory import Registry, load_plugins
from cmis_core.markers import PROJECT
from cmis_core.settings import PlatformSettings, Settings
from cmis_core.sync.fanout import ordered
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.serve import RunningSandbox, serve_sandbox
from cmis_core.types import Capability, PlatformContext, TokenSet

Records = dict[str, list[Mapping[str, Any]]]


async def raised(call: Awaitable[Any]) -> BaseException | None:
    """The exception ``call`` raises, or ``None`` when it returns."""
    try:
        await call
    except Exception as exc:
        return exc
    return None


def stream_order(streams: Mapping[str, Stream]) -> list[Stream]:
    """Streams with every parent before its children; a cycle or unknown parent fails the test.

    The engine's order (:func:`cmis_core.sync.fanout.ordered`); its ``PluginError`` is
    raised as an ``AssertionError``, as a failed check of the kit.
    """
    try:
        return ordered(streams)
    except PluginError as exc:
        raise AssertionError(exc.message) from None


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
