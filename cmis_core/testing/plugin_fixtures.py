"""pytest fixtures for plugin tests beyond the kit. Opt in from a test module or the root
conftest with ``pytest_plugins = ["cmis_core.testing.plugin_fixtures"]``.

- ``loopback``: ``loopback(app) -> base_url``, serving an ASGI app on 127.0.0.1 until the
  test ends.
- ``sandbox_server``: ``sandbox_server(sandbox, options=None) -> RunningSandbox``, a
  platform's sandbox served the same way, with the settings that point at it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from cmis_core.contract import ASGIApp, Sandbox, SandboxOptions
from cmis_core.testing.serve import RunningSandbox, serve, serve_sandbox


@pytest.fixture
def loopback() -> Iterator[Callable[[ASGIApp], str]]:
    """Serve ASGI apps on loopback ports for the duration of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serve(app))


@pytest.fixture
def sandbox_server() -> Iterator[Callable[..., RunningSandbox]]:
    """Serve platform sandboxes for the duration of the test."""
    with contextlib.ExitStack() as stack:

        def start(sandbox: Sandbox, options: SandboxOptions | None = None) -> RunningSandbox:
            return stack.enter_context(serve_sandbox(sandbox, options))

        yield start
