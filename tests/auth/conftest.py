"""Fixtures for the auth tests: the example sandbox on loopback, a store, a vault, an org.

``auth`` bundles what the flows take (store, vault, registry, settings) plus the served
sandbox and its control API; a fresh database per test (SQLite and PostgreSQL).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import pytest

from cmis_core.auth import connect as flows
from cmis_core.contract import SandboxOptions
from cmis_core.factory import Registry, load_plugins
from cmis_core.settings import Settings
from cmis_core.store import Org, Store, open_store
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.serve import RunningSandbox, serve_sandbox
from cmis_core.types import IntegrationEvent
from cmis_core.vault import SecretKey, Vault

pytest.importorskip("cmis_example")
from cmis_example import plugin as example_plugin

KEY = SecretKey.generate().encoded()


class Observer:
    """A plugin module stand-in recording the integration events it receives."""

    def __init__(self) -> None:
        self.events: list[tuple[str, IntegrationEvent]] = []

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def make_observer() -> tuple[Observer, object]:
    from cmis_core.markers import hookimpl

    seen = Observer()

    class Hooks:
        @hookimpl
        def cmis_on_integration_connected(self, event: IntegrationEvent) -> None:
            seen.events.append(("connected", event))

        @hookimpl
        def cmis_on_integration_needs_reauth(self, event: IntegrationEvent) -> None:
            seen.events.append(("needs_reauth", event))

        @hookimpl
        def cmis_on_integration_expiring(self, event: IntegrationEvent) -> None:
            seen.events.append(("expiring", event))

    return seen, Hooks()


def registry_with(*builtins: tuple[str, object]) -> Registry:
    settings = Settings.from_env({"CMIS_PLUGINS_STRICT": "1"})
    return load_plugins(settings, entry_points=[], builtins=list(builtins))


@attrs.define
class Auth:
    """What the auth flows take, plus the sandbox they talk to."""

    store: Store
    vault: Vault
    registry: Registry
    settings: Settings
    sandbox: RunningSandbox
    org: Org
    observer: Observer
    database: TestDatabase
    platform: str = "example"

    def args(self) -> tuple[Any, Any, Any, Any]:
        return (self.store, self.vault, self.registry, self.settings)

    def control(self, http: httpx2.AsyncClient) -> SandboxControl:
        return SandboxControl(self.sandbox.base_url, http, platform=self.platform)

    async def consent(
        self, http: httpx2.AsyncClient, **kwargs: Any
    ) -> tuple[flows.ConnectStart, dict[str, str]]:
        """begin_connect, then follow the consent URL: the start and the callback params."""
        start = await flows.begin_connect(
            *self.args(), org_id=self.org.id, platform=self.platform, http=http, **kwargs
        )
        response = await http.get(start.auth_url)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(start.redirect_uri)
        return start, dict(parse_qsl(urlsplit(location).query))

    async def connect(self, http: httpx2.AsyncClient, **kwargs: Any) -> flows.Connected:
        _, params = await self.consent(http, **kwargs)
        return await flows.complete_connect(
            *self.args(), platform=self.platform, params=params, http=http
        )


@pytest.fixture(scope="module")
def example_sandbox() -> Iterator[RunningSandbox]:
    with serve_sandbox(
        example_plugin.cmis_sandboxes()[0], SandboxOptions(rate_limit=False)
    ) as running:
        yield running


@pytest.fixture
def auth(database: TestDatabase, example_sandbox: RunningSandbox) -> Iterator[Auth]:
    env = {
        **database.environ(),
        **example_sandbox.env,
        "CMIS_SECRET_KEYS": KEY,
        "CMIS_PUBLIC_URL": "http://127.0.0.1:8000",
        "CMIS_OAUTH_REDIRECT_URIS": "http://127.0.0.1:8765/oauth/callback/example",
    }
    settings = Settings.from_env(env)
    observer, hooks = make_observer()
    registry = registry_with(("example", example_plugin), ("observer", hooks))
    with contextlib.closing(open_store(settings)) as store:
        org = store.create_org("acme")
        yield Auth(
            store=store,
            vault=Vault.from_settings(settings),
            registry=registry,
            settings=settings,
            sandbox=example_sandbox,
            org=org,
            observer=observer,
            database=database,
        )


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10.0) as client:
        yield client
