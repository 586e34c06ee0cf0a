"""Connect, callback, list and disconnect through the service, end to end over the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from cmis_core.service.app import create_app

from .conftest import Auth


@pytest.fixture
def client(auth: Auth) -> Iterator[TestClient]:
    app = create_app(auth.settings, store=auth.store, registry=auth.registry)
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.fixture
def key(auth: Auth) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.store.create_api_key(auth.org.id)[1]}"}


def consent(client: TestClient, key: dict[str, str]) -> tuple[str, dict[str, str]]:
    """POST connect, follow the consent URL: the callback path and its query."""
    started = client.post("/api/orgs/acme/integrations/example/connect", headers=key)
    assert started.status_code == 200, started.text
    with httpx2.Client() as browser:
        answer = browser.get(started.json()["auth_url"])
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    return location.path, dict(parse_qsl(location.query))


def test_connect_over_http_then_list_then_disconnect(
    client: TestClient, key: dict[str, str], auth: Auth
) -> None:
    path, params = consent(client, key)
    assert path == "/oauth/callback/example"
    with capture_logs() as logs:
        done = client.get(path, params=params)
    assert done.status_code == 200
    assert "text/html" in done.headers["content-type"]
    assert "Example Ads is connected for acme" in done.text
    text = repr(logs)
    assert params["code"] not in text and params["state"] not in text
    assert any(e["event"] == "http.access" for e in logs)

    listed = client.get("/api/orgs/acme/integrations", headers=key).json()
    [row] = listed["integrations"]
    assert (row["platform"], row["status"], row["external_user_id"]) == (
        "example",
        "active",
        "sbx_user_1",
    )
    assert "token" not in " ".join(k for k in row if k != "access_expires_at")

    gone = client.delete("/api/orgs/acme/integrations/example", headers=key)
    assert gone.status_code == 200
    assert gone.json()["revoked"] is True
    listed = client.get("/api/orgs/acme/integrations", headers=key).json()
    assert listed["integrations"][0]["status"] == "disconnected"


def test_callback_errors_are_clear_html_or_json(
    client: TestClient, key: dict[str, str], auth: Auth
) -> None:
    path, params = consent(client, key)
    assert client.get(path, params=params).status_code == 200
    reused = client.get(path, params=params)
    assert reused.status_code == 400
    assert "already used" in reused.text and "<h1>Connection failed</h1>" in reused.text
    as_json = client.get(path, params=params, headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert "already used" in as_json.json()["error"]
    assert params["state"] not in as_json.text

    missing = client.get(path, headers={"Accept": "application/json"})
    assert "no state" in missing.json()["error"]
    denied = client.get(
        path,
        params={"error": "access_denied", "state": "x" * 43},
        headers={"Accept": "application/json"},
    )
    assert denied.status_code == 400 and "unknown state" in denied.json()["error"]


def test_connect_needs_the_orgs_key_and_a_known_platform(
    client: TestClient, key: dict[str, str], auth: Auth
) -> None:
    assert client.post("/api/orgs/acme/integrations/example/connect").status_code == 401
    unknown = client.post("/api/orgs/acme/integrations/nosuch/connect", headers=key)
    assert unknown.status_code == 404 and "nosuch" in unknown.json()["error"]
    bad_uri = client.post(
        "/api/orgs/acme/integrations/example/connect",
        headers=key,
        json={"redirect_uri": "https://evil.example/cb"},
    )
    assert bad_uri.status_code == 400 and "redirect URI" in bad_uri.json()["error"]
    not_connected = client.delete("/api/orgs/acme/integrations/example", headers=key)
    assert not_connected.status_code == 400
