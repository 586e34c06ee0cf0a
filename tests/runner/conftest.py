"""Fixtures of the runner tests: the example sandbox (fast, and a slow one to kill runs
in), a runtime on a fresh database (SQLite and PostgreSQL), connected organisations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cmis_core.contract import SandboxOptions
from cmis_core.runner.work import Runtime
from cmis_core.settings import Settings
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.serve import RunningSandbox, serve_sandbox

from .support import registry_for_example, runner_environ

pytest.importorskip("cmis_example")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    registry = registry_for_example()
    with serve_sandbox(registry.sandbox("example"), SandboxOptions(rate_limit=False)) as running:
        yield running


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[RunningSandbox]:
    """Every API call takes 60 ms: a sync lasts a few seconds, long enough to kill."""
    registry = registry_for_example()
    options = SandboxOptions(rate_limit=False, latency_ms=60)
    with serve_sandbox(registry.sandbox("example"), options) as running:
        yield running


def make_env(database: TestDatabase, sandbox: RunningSandbox) -> dict[str, str]:
    return runner_environ(database.environ(), sandbox.env)


@pytest.fixture
def env(database: TestDatabase, sandbox: RunningSandbox) -> dict[str, str]:
    return make_env(database, sandbox)


@pytest.fixture
def rt(env: dict[str, str]) -> Iterator[Runtime]:
    with Runtime.open(Settings.from_env(env), registry=registry_for_example()) as opened:
        yield opened
