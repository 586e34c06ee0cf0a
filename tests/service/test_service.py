"""The service skeleton: health, org-scoped API keys, JSON errors, access log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from cmis_core.factory import load_plugins
from cmis_core.service.access_log import mask_query
from cmis_core.service.app import create_app
from cmis_core.store import Store
from cmis_core.testing.databases import TestDatabase


@pytest.fixture
def client(store: Store, database: TestDatabase) -> Iterator[TestClient]:
    registry = load_plugins(database.settings(), entry_points=[])
    app = create_app(database.settings(), store=store, registry=registry)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def keys(store: Store) -> dict[str, str]:
    acme = store.create_org("acme")
    globex = store.create_org("globex")
    return {"acme": store.create_api_key(acme.id)[1], "globex": store.create_api_key(globex.id)[1]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


def test_org_key_gets_its_org(client: TestClient, keys: dict[str, str]) -> None:
    answer = client.get("/api/orgs/acme", headers=bearer(keys["acme"]))
    assert answer.status_code == 200
    assert answer.json()["slug"] == "acme"


def test_other_orgs_key_is_403(client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/api/orgs/acme", headers=bearer(keys["globex"])).status_code == 403
    assert client.get("/api/orgs/nosuch", headers=bearer(keys["globex"])).status_code == 403


def test_missing_or_bad_key_is_401(client: TestClient, keys: dict[str, str], store: Store) -> None:
    missing = client.get("/api/orgs/acme")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/orgs/acme", headers=bearer("cmis_nope_nope")).status_code == 401
    assert client.get("/api/orgs/acme", headers={"Authorization": "Basic abc"}).status_code == 401
    key_id = store.list_api_keys(store.get_org("acme").id)[0].id
    store.revoke_api_key(key_id)
    assert client.get("/api/orgs/acme", headers=bearer(keys["acme"])).status_code == 401


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    missing = client.get("/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
    assert client.post("/healthz").status_code == 405


def test_access_log_masks_query_values(client: TestClient) -> None:
    with capture_logs() as logs:
        client.get("/healthz?code=SECRETCODE&state=SECRETSTATE&json=1")
    [line] = [entry for entry in logs if entry["event"] == "http.access"]
    assert line["status"] == 200 and line["path"] == "/healthz"
    assert "SECRET" not in str(line)
    assert line["query"] == "code=***&state=***&json=1"


def test_mask_query_keeps_only_safe_values() -> None:
    assert mask_query(b"hub.mode=subscribe&hub.verify_token=t0k&hub.challenge=9") == (
        "hub.mode=subscribe&hub.verify_token=***&hub.challenge=***"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cmis_serve_answers_and_logs_no_query_secrets(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CMIS_HOME": str(tmp_path), "CMIS_LOG_FORMAT": "json"}
    env.pop("CMIS_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "cmis_core", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx2.get(f"http://127.0.0.1:{port}/healthz?code=LEAKME", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer.json() == {"status": "ok"}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "LEAKME" not in stderr
    assert '"event": "http.access"' in stderr or '"event":"http.access"' in stderr
