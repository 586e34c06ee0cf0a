"""`cmis demo`: every installed platform, offline, end to end, in well under a minute.

1. a SQLite database under ``CMIS_HOME`` (a new temporary folder unless one is given);
2. the organisation ``demo`` (reused when it exists);
3. the sandbox of every installed platform, on loopback;
4. ``cmis serve`` on loopback, with ``CMIS_PUBLIC_URL`` pointing at it;
5. each platform connected through its real OAuth flow: consent URL from cmis, the
   sandbox's consent page, the redirect to the service's ``/oauth/callback/<platform>``;
6. a few signed webhooks from each sandbox delivered to the service;
7. the runner (``cmis run``'s work, in process): refresh, sync, inbox;
8. a table per platform of what was synced.

Re-running with the same ``CMIS_HOME`` reuses the organisation and its integrations
(reconnected, since each run starts new sandboxes) and syncs again: upserts, no duplicates.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

ORG = "demo"
WEBHOOKS_PER_PLATFORM = 3
TABLES = (
    ("accounts", "ad_accounts"),
    ("campaigns", "campaigns"),
    ("ad groups", "ad_groups"),
    ("ads", "ads"),
    ("daily metric rows", "daily_metrics"),
    ("leads", "leads"),
)


@attrs.frozen(kw_only=True)
class DemoPlan:
    """Where the demo keeps its database, and whether that folder is its own."""

    home: Path
    temporary: bool

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DemoPlan:
        given = environ.get("CMIS_HOME") or ""
        if given:
            return cls(home=Path(given).expanduser(), temporary=False)
        return cls(home=Path(tempfile.mkdtemp(prefix="cmis-demo-")), temporary=True)

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with the demo's database: SQLite under ``home`` (never CMIS_DATABASE_URL)."""
        env = {
            k: v
            for k, v in base.items()
            if k not in ("CMIS_DATABASE_URL", "CMIS_DATABASE_MIGRATION_URL")
        }
        env["CMIS_HOME"] = str(self.home)
        return env


@contextlib.contextmanager
def serve_on(sock: socket.socket, app: Any, *, timeout: float = 10.0) -> Iterator[None]:
    """Serve ``app`` (lifespan on) on the bound socket ``sock`` in a daemon thread."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        log_config=None,
        lifespan="on",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="cmis-serve", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("cmis serve did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout)


def loopback_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port, and its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def connect_platform(rt: Any, org_id: int, platform: str) -> dict[str, Any]:
    """Connect ``platform`` through its OAuth flow: cmis's consent URL, the sandbox's
    consent (approved at once), the redirect to cmis serve's callback (its JSON answer)."""
    import httpx2

    from cmis_core.auth import connect as flows
    from cmis_core.errors import OAuthFlowError

    async with httpx2.AsyncClient(timeout=30.0, follow_redirects=True) as http:
        start = await flows.begin_connect(
            rt.store,
            rt.vault,
            rt.registry,
            rt.settings,
            org_id=org_id,
            platform=platform,
            http=http,
        )
        answer = await http.get(start.auth_url, headers={"Accept": "application/json"})
    if answer.status_code != 200:
        raise OAuthFlowError(
            f"connecting {platform} to its sandbox failed: HTTP {answer.status_code}"
        )
    done: dict[str, Any] = answer.json()
    return done


async def deliver_webhooks(sandbox_url: str, service_url: str, count: int) -> list[int]:
    """Ask the sandbox for ``count`` signed deliveries and POST them to cmis serve;
    the HTTP statuses cmis answered (empty when the platform sends no webhooks)."""
    import httpx2

    statuses: list[int] = []
    async with httpx2.AsyncClient(timeout=30.0) as http:
        for _ in range(count):
            sample = await http.post(f"{sandbox_url}/_sandbox/webhooks/sample", json={})
            if sample.status_code == 404:
                return statuses
            sample.raise_for_status()
            data = sample.json()
            answer = await http.request(
                data.get("method", "POST"),
                f"{service_url}{data['path']}",
                params=data.get("query") or None,
                headers=data.get("headers") or {},
                content=base64.b64decode(data["body_b64"]),
            )
            statuses.append(answer.status_code)
    return statuses


def queue_syncs(store: Any, org_id: int) -> None:
    """Ask for a sync of every active integration of ``org_id`` now (``queued_at``)."""
    from sqlalchemy import update

    from cmis_core.store import tables
    from cmis_core.types import utcnow

    t = tables.integrations
    with store.org(org_id) as conn:
        conn.execute(
            update(t).where(t.c.org_id == org_id, t.c.status == "active").values(queued_at=utcnow())
        )


def counts(store: Any, org_id: int, platform: str) -> dict[str, int]:
    """Rows of ``platform`` in each table the demo shows."""
    from sqlalchemy import func, select

    from cmis_core.store import tables

    out: dict[str, int] = {}
    with store.org(org_id, write=False) as conn:
        for label, name in TABLES:
            table = getattr(tables, name)
            out[label] = int(
                conn.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.org_id == org_id, table.c.platform == platform)
                ).scalar_one()
            )
    return out


def env_of_sandboxes(running: list[Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for sandbox in running:
        env.update(sandbox.env)
    return env


__all__ = [
    "ORG",
    "TABLES",
    "DemoPlan",
    "connect_platform",
    "counts",
    "deliver_webhooks",
    "env_of_sandboxes",
    "loopback_socket",
    "queue_syncs",
    "serve_on",
]
