"""Serve an ASGI app on a real loopback socket for the length of a ``with`` block.

Tests talk to the sandbox over TCP exactly as cmis talks to the platform: same client,
same redirects, same headers. uvicorn runs in a daemon thread on a free 127.0.0.1 port;
its access log is off (sandbox URLs may carry tokens in the query).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import attrs

from cmis_core.contract import ASGIApp, Sandbox, SandboxOptions


@contextlib.contextmanager
def serve(app: ASGIApp, *, host: str = "127.0.0.1", timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on ``host`` at a free port; yields the base URL (``http://127.0.0.1:PORT``)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the sandbox server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@attrs.frozen(kw_only=True)
class RunningSandbox:
    """A platform's sandbox being served: its base URL and the settings pointing at it."""

    platform: str
    base_url: str
    env: dict[str, str] = attrs.field(repr=False)
    app: ASGIApp = attrs.field(repr=False, eq=False)


@contextlib.contextmanager
def serve_sandbox(
    sandbox: Sandbox, options: SandboxOptions | None = None
) -> Iterator[RunningSandbox]:
    """Build ``sandbox`` with ``options`` and serve it; yields where it is and its settings."""
    app = sandbox.app(options or SandboxOptions())
    with serve(app) as base_url:
        yield RunningSandbox(
            platform=sandbox.platform, base_url=base_url, env=sandbox.env(base_url), app=app
        )
