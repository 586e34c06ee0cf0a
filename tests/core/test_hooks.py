"""Every hook of the contract: documented in docs/hooks.md and exercised by a test here."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cmis_core import hookimpl, hookspecs
from cmis_core.contract import Page, Partition, Sandbox, SandboxOptions
from cmis_core.factory import Registry, load_plugins
from cmis_core.settings import Settings
from cmis_core.types import (
    AuthorizationRequest,
    EntityKind,
    Identity,
    IntegrationEvent,
    IntegrationStatus,
    Platform,
    PlatformContext,
    SyncFinishedEvent,
    TokenSet,
    WebhookEvent,
    WebhookProcessedEvent,
    WebhookRequest,
    WebhookResponse,
)

ROOT = Path(__file__).parents[2]
ALL_HOOKS = (*hookspecs.CAPABILITY_HOOKS, "cmis_register_commands", *hookspecs.OBSERVER_HOOKS)


class Auth:
    platform = "zeta"
    flow = "oauth2"

    async def begin(
        self, ctx: PlatformContext, *, redirect_uri: str, state: str, scopes: tuple[str, ...]
    ) -> AuthorizationRequest:
        return AuthorizationRequest(url=f"https://zeta.example/auth?state={state}")

    async def complete(
        self,
        ctx: PlatformContext,
        *,
        params: Mapping[str, str],
        request: AuthorizationRequest,
        redirect_uri: str,
    ) -> TokenSet:
        return TokenSet(access_token="a")

    async def refresh(self, ctx: PlatformContext, tokens: TokenSet) -> TokenSet:
        return tokens

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        return Identity(user_id="u1")

    async def revoke(self, ctx: PlatformContext, tokens: TokenSet) -> bool:
        return False

    def http_auth(self, tokens: TokenSet) -> Any:
        return None


class Verifier:
    platform = "zeta"

    def handshake(self, request: WebhookRequest, settings: Any) -> WebhookResponse | None:
        return WebhookResponse(body=request.query.get("challenge", "").encode())

    def verify(self, request: WebhookRequest, settings: Any) -> None:
        return None

    def dedupe_key(self, request: WebhookRequest) -> str:
        return "k"

    def parse(self, body: bytes) -> list[WebhookEvent]:
        return []

    def mask(self, body: bytes) -> bytes:
        return body


class Campaigns:
    platform = "zeta"
    name = "campaigns"
    entity = EntityKind.CAMPAIGN
    parent = "ad_accounts"

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        return [Partition(key="all")]

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        yield Page(records=[])


class ZetaPlugin:
    """A complete in-memory plugin implementing every hook."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def cmis_platforms(self) -> list[Platform]:
        return [
            Platform(
                name="zeta",
                display_name="Zeta",
                api_version="v3",
                base_url="https://api.zeta.example",
            )
        ]

    @hookimpl
    def cmis_auth_providers(self) -> list[Any]:
        return [Auth()]

    @hookimpl
    def cmis_webhook_verifiers(self) -> list[Any]:
        return [Verifier()]

    @hookimpl
    def cmis_streams(self) -> list[Any]:
        return [Campaigns()]

    @hookimpl
    def cmis_sandboxes(self) -> list[Sandbox]:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            return None

        return [
            Sandbox(
                platform="zeta", app=lambda options: app, env=lambda url: {"CMIS_ZETA_API_URL": url}
            )
        ]

    @hookimpl
    def cmis_register_commands(self, cli: click.Group) -> None:
        @cli.command("zeta-hello")
        def hello() -> None:
            click.echo("hello from zeta")

    @hookimpl
    def cmis_on_integration_connected(self, event: IntegrationEvent) -> None:
        self.seen.append(("connected", event.event_id))

    @hookimpl
    def cmis_on_integration_expiring(self, event: IntegrationEvent) -> None:
        self.seen.append(("expiring", event.event_id))

    @hookimpl
    def cmis_on_integration_needs_reauth(self, event: IntegrationEvent) -> None:
        self.seen.append(("needs_reauth", event.event_id))

    @hookimpl
    def cmis_on_sync_finished(self, event: SyncFinishedEvent) -> None:
        self.seen.append(("sync_finished", event.event_id))

    @hookimpl
    def cmis_on_webhook_processed(self, event: WebhookProcessedEvent) -> None:
        self.seen.append(("webhook_processed", event.event_id))


@pytest.fixture
def plugin() -> ZetaPlugin:
    return ZetaPlugin()


@pytest.fixture
def registry(plugin: ZetaPlugin) -> Registry:
    return load_plugins(Settings.from_env({}), entry_points=[], builtins=[("zeta", plugin)])


def _integration_event(event_id: str) -> IntegrationEvent:
    return IntegrationEvent(
        event_id=event_id,
        org="acme",
        platform="zeta",
        integration_id="i1",
        status=IntegrationStatus.ACTIVE,
    )


def test_hook_cmis_platforms(registry: Registry) -> None:
    assert registry.platform("zeta").api_version == "v3"


def test_hook_cmis_auth_providers(registry: Registry) -> None:
    assert registry.auth_provider("zeta").flow == "oauth2"


def test_hook_cmis_webhook_verifiers(registry: Registry) -> None:
    request = WebhookRequest(
        platform="zeta", method="GET", path="/webhooks/zeta", query={"challenge": "42"}
    )
    answer = registry.webhook_verifier("zeta").handshake(request, None)
    assert answer is not None and answer.body == b"42"


def test_hook_cmis_streams(registry: Registry) -> None:
    assert list(registry.streams_of("zeta")) == ["campaigns"]
    assert registry.streams_of("zeta")["campaigns"].entity is EntityKind.CAMPAIGN


def test_hook_cmis_sandboxes(registry: Registry) -> None:
    sandbox = registry.sandbox("zeta")
    assert sandbox.env("http://127.0.0.1:1") == {"CMIS_ZETA_API_URL": "http://127.0.0.1:1"}
    assert callable(sandbox.app(SandboxOptions()))


def test_hook_cmis_register_commands(registry: Registry) -> None:
    group = click.Group("cmis")
    for impl in registry.pm.hook.cmis_register_commands.get_hookimpls():
        impl.function(cli=group)
    result = CliRunner().invoke(group, ["zeta-hello"])
    assert result.output == "hello from zeta\n"


def test_hook_cmis_on_integration_connected(registry: Registry, plugin: ZetaPlugin) -> None:
    registry.integration_connected(_integration_event("e1"))
    assert plugin.seen == [("connected", "e1")]


def test_hook_cmis_on_integration_expiring(registry: Registry, plugin: ZetaPlugin) -> None:
    registry.integration_expiring(_integration_event("e2"))
    assert plugin.seen == [("expiring", "e2")]


def test_hook_cmis_on_integration_needs_reauth(registry: Registry, plugin: ZetaPlugin) -> None:
    registry.integration_needs_reauth(_integration_event("e3"))
    assert plugin.seen == [("needs_reauth", "e3")]


def test_hook_cmis_on_sync_finished(registry: Registry, plugin: ZetaPlugin) -> None:
    registry.sync_finished(
        SyncFinishedEvent(
            event_id="e4", org="acme", platform="zeta", integration_id="i1", run_id="r1", ok=True
        )
    )
    assert plugin.seen == [("sync_finished", "e4")]


def test_hook_cmis_on_webhook_processed(registry: Registry, plugin: ZetaPlugin) -> None:
    registry.webhook_processed(
        WebhookProcessedEvent(
            event_id="e5",
            org="acme",
            platform="zeta",
            delivery_id="d1",
            kind="lead",
            external_id="l1",
        )
    )
    assert plugin.seen == [("webhook_processed", "e5")]


def test_every_hook_is_documented_and_tested() -> None:
    docs = (ROOT / "docs" / "hooks.md").read_text()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    declared = {
        n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("cmis_")
    }
    assert declared == set(ALL_HOOKS)
    for name in sorted(declared):
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({args})`" in docs, f"{name} is not documented in docs/hooks.md"
        assert re.search(rf"def test_hook_{name}\b", tests), f"{name} has no test_hook_{name}"
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Example::" in doc and ".. versionadded::" in doc


def _runtime_imports(path: Path) -> set[str]:
    """Modules a file imports at run time (not under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_hookspecs_import_only_pluggy() -> None:
    allowed = {"__future__", "collections.abc", "typing", "cmis_core.markers"}
    assert _runtime_imports(ROOT / "cmis_core" / "hookspecs.py") <= allowed
    assert _runtime_imports(ROOT / "cmis_core" / "markers.py") == {"pluggy"}
