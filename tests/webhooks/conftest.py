"""Fixtures of the webhook tests: settings with webhook secrets, the service on a test DB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cmis_core.factory import Registry
from cmis_core.service.app import create_app
from cmis_core.settings import Settings
from cmis_core.store import Store
from cmis_core.testing.databases import TestDatabase
from tests.webhooks.support import ProcessedCounter, env, registry_with


@pytest.fixture
def settings(database: TestDatabase) -> Settings:
    return database.settings(**env())


@pytest.fixture
def counter() -> ProcessedCounter:
    return ProcessedCounter()


@pytest.fixture
def registry(settings: Settings, counter: ProcessedCounter) -> Registry:
    return registry_with(settings, None, counter)


@pytest.fixture
def client(settings: Settings, store: Store, registry: Registry) -> Iterator[TestClient]:
    app = create_app(settings, store=store, registry=registry)
    with TestClient(app) as test_client:
        yield test_client
