"""`/webhooks/{platform}`: every answer the receive path gives, counted and stored right."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from cmis_core.service.app import create_app
from cmis_core.settings import Settings
from cmis_core.store import Store
from cmis_core.store.tables import webhook_events
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.serve import serve
from cmis_core.webhooks.metrics import parse_text
from tests.webhooks.support import (
    FORM_KEY,
    SECRET,
    VERIFY_TOKEN,
    body_of,
    env,
    lead_of,
    registry_with,
    signed,
)


def inbox_rows(store: Store) -> list[dict[str, object]]:
    with store.system(write=False) as conn:
        return [dict(r._mapping) for r in conn.execute(select(webhook_events))]


def metric(client: TestClient, name: str) -> float:
    return parse_text(client.get("/metrics").text).get(name, 0.0)


def rejected(client: TestClient, reason: str, status: int, platform: str = "example") -> float:
    return metric(
        client,
        f'cmis_webhook_rejections_total{{platform="{platform}",reason="{reason}",status="{status}"}}',
    )


def test_a_delivery_is_stored_once_and_a_redelivery_answers_200(
    client: TestClient, store: Store
) -> None:
    body = body_of(1, lead=lead_of(1))
    first = client.post("/webhooks/example", content=body, headers=signed(body))
    again = client.post("/webhooks/example", content=body, headers=signed(body))
    assert (first.status_code, first.json()) == (200, {"status": "stored"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    rows = inbox_rows(store)
    assert len(rows) == 1
    row = rows[0]
    assert (row["platform"], row["dedupe_key"], row["status"]) == (
        "example",
        "id:evt_1",
        "received",
    )
    assert bytes(row["body"]) == body  # type: ignore[arg-type]
    assert row["received_at"] is not None
    stored = metric(client, 'cmis_webhook_deliveries_total{platform="example",outcome="stored"}')
    dupes = metric(client, 'cmis_webhook_deliveries_total{platform="example",outcome="duplicate"}')
    assert (stored, dupes) == (1, 1)
    text = client.get("/metrics").text
    assert 'cmis_webhook_inbox_depth{platform="example",status="received"} 1' in text
    assert 'cmis_webhook_processing_lag_seconds{platform="example"}' in text


def test_stored_row_keeps_useful_headers_and_masks_body_secrets(
    client: TestClient, store: Store
) -> None:
    body = body_of(2, lead=lead_of(2), form_key=FORM_KEY)
    headers = {**signed(body), "user-agent": "ExampleAds/1.0", "cookie": "session=abc"}
    assert client.post("/webhooks/example", content=body, headers=headers).status_code == 200
    (row,) = inbox_rows(store)
    stored = bytes(row["body"])  # type: ignore[arg-type]
    assert FORM_KEY.encode() not in stored
    assert json.loads(stored)["form_key"] == "***"
    kept = row["headers"]
    assert isinstance(kept, dict)
    assert kept["content-type"] == "application/json"
    assert kept["user-agent"] == "ExampleAds/1.0"
    assert "x-example-timestamp" in kept
    assert "x-example-signature" not in kept  # signatures and cookies are not kept
    assert "cookie" not in kept


def test_handshake_echoes_the_challenge_and_refuses_a_wrong_token(client: TestClient) -> None:
    good = client.get(
        "/webhooks/example",
        params={"mode": "subscribe", "challenge": "c-123", "verify_token": VERIFY_TOKEN},
    )
    assert (good.status_code, good.text) == (200, "c-123")
    bad = client.get(
        "/webhooks/example",
        params={"mode": "subscribe", "challenge": "c-123", "verify_token": "nope"},
    )
    assert bad.status_code == 403
    assert rejected(client, "bad_verify_token", 403) == 1
    shakes = metric(client, 'cmis_webhook_deliveries_total{platform="example",outcome="handshake"}')
    assert shakes == 1


def _stale(body: bytes) -> dict[str, str]:
    return signed(body, timestamp=time.time() - 3600)


def _wrong(body: bytes) -> dict[str, str]:
    return signed(body, secret="not-the-secret")


def _unsigned(body: bytes) -> dict[str, str]:
    headers = signed(body)
    del headers["x-example-signature"]
    return headers


def _garbled(body: bytes) -> dict[str, str]:
    return {**signed(body), "x-example-signature": "sha256=zz-not-hex"}


def _untimed(body: bytes) -> dict[str, str]:
    headers = signed(body)
    del headers["x-example-timestamp"]
    return headers


@pytest.mark.parametrize(
    ("headers_for", "reason"),
    [
        (_unsigned, "missing_signature"),
        (_wrong, "bad_signature"),
        (_garbled, "malformed_signature"),
        (_stale, "stale_timestamp"),
        (_untimed, "missing_timestamp"),
    ],
)
def test_signature_failures_are_401_counted_logged_and_not_stored(
    client: TestClient, store: Store, headers_for: object, reason: str
) -> None:
    body = body_of(3, lead=lead_of(3, email="secret.person@example.org"))
    with capture_logs() as logs:
        answer = client.post("/webhooks/example", content=body, headers=headers_for(body))  # type: ignore[operator]
    assert (answer.status_code, answer.json()) == (401, {"error": reason})
    assert rejected(client, reason, 401) == 1
    assert inbox_rows(store) == []
    (line,) = [e for e in logs if e["event"] == "webhooks.rejected"]
    assert (line["reason"], line["status"], line["platform"]) == (reason, 401, "example")
    assert "secret.person" not in repr(logs)
    assert SECRET not in repr(logs)


def test_a_tampered_body_is_refused(client: TestClient, store: Store) -> None:
    body = body_of(4)
    headers = signed(body)
    answer = client.post(
        "/webhooks/example", content=body.replace(b"evt_4", b"evt_5"), headers=headers
    )
    assert answer.status_code == 401
    assert inbox_rows(store) == []


def test_unknown_platform_is_404_counted_under_one_label(client: TestClient) -> None:
    body = body_of(5)
    for name in ("nosuch", "other"):
        assert (
            client.post(f"/webhooks/{name}", content=body, headers=signed(body)).status_code == 404
        )
    assert rejected(client, "unknown_platform", 404, platform="_unknown") == 2


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client: TestClient, method: str) -> None:
    answer = client.request(method, "/webhooks/example", content=b"{}")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert rejected(client, "bad_method", 405) == 1


def test_a_body_that_is_not_what_the_platform_sends_is_400_never_500(
    client: TestClient, store: Store
) -> None:
    for body in (b"not json", b"[1, 2]", b'{"id": "x"}', b""):
        answer = client.post("/webhooks/example", content=body, headers=signed(body))
        assert answer.status_code == 400, body
    assert rejected(client, "malformed", 400) == 4
    assert inbox_rows(store) == []


def test_declared_oversize_body_is_413_before_reading(database: TestDatabase, store: Store) -> None:
    settings = database.settings(**env(), CMIS_WEBHOOK_MAX_BODY="1000")
    app = create_app(settings, store=store, registry=registry_with(settings))
    body = body_of(6, padding="x" * 2000)
    with TestClient(app) as client:
        answer = client.post("/webhooks/example", content=body, headers=signed(body))
        assert (answer.status_code, answer.json()) == (413, {"error": "body_too_large"})
        assert rejected(client, "body_too_large", 413) == 1

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
            for _ in range(5):
                yield b"x" * 400

        streamed = client.post("/webhooks/example", content=chunks(), headers=signed(body))
        assert streamed.status_code == 413
        assert rejected(client, "body_too_large", 413) == 2
    assert inbox_rows(store) == []


def test_a_missing_webhook_secret_is_503_so_the_platform_retries(
    database: TestDatabase, store: Store
) -> None:
    settings = database.settings()  # no CMIS_EXAMPLE_WEBHOOK_SECRET
    app = create_app(settings, store=store, registry=registry_with(settings))
    body = body_of(7)
    with TestClient(app) as client, capture_logs() as logs:
        answer = client.post("/webhooks/example", content=body, headers=signed(body))
        assert answer.status_code == 503
        assert answer.headers["retry-after"]
        assert rejected(client, "not_configured", 503) == 1
    assert any(
        e["event"] == "webhooks.not_configured" and "CMIS_EXAMPLE_WEBHOOK_SECRET" in e["error"]
        for e in logs
    )


# --- over a real socket: a slow sender, and a body refused while it is still arriving


def _raw_exchange(base_url: str, head: bytes, parts: list[bytes], *, wait: float) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        for part in parts:
            sock.sendall(part)
        time.sleep(wait)
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


@pytest.fixture
def served(database: TestDatabase, store: Store) -> Iterator[tuple[str, Settings]]:
    settings = database.settings(
        **env(), CMIS_WEBHOOK_MAX_BODY="1000", CMIS_WEBHOOK_BODY_TIMEOUT="0.3"
    )
    app = create_app(settings, store=store, registry=registry_with(settings))
    with serve(app) as base_url:
        yield base_url, settings


def test_a_sender_too_slow_to_finish_its_body_gets_408(
    served: tuple[str, Settings], store: Store
) -> None:
    base_url, _ = served
    body = body_of(8)
    headers = "".join(f"{k}: {v}\r\n" for k, v in signed(body).items())
    head = (
        f"POST /webhooks/example HTTP/1.1\r\nhost: x\r\n{headers}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    answer = _raw_exchange(base_url, head, [body[:10]], wait=0.6)  # then stalls
    assert answer.startswith(b"HTTP/1.1 408"), answer[:40]
    assert inbox_rows(store) == []


def test_an_endless_chunked_body_is_refused_with_413_while_it_arrives(
    served: tuple[str, Settings], store: Store
) -> None:
    base_url, _ = served
    head = (
        b"POST /webhooks/example HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    chunk = b"400\r\n" + b"x" * 0x400 + b"\r\n"  # 1 KiB each, never a last chunk
    answer = _raw_exchange(base_url, head, [chunk, chunk], wait=0.05)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:40]  # not 408: refused while reading
    assert inbox_rows(store) == []


def test_concurrent_redeliveries_store_one_row(client: TestClient, store: Store) -> None:
    import concurrent.futures

    body = body_of(9)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: client.post("/webhooks/example", content=body, headers=signed(body)),
                range(16),
            )
        )
    assert {a.status_code for a in answers} == {200}
    assert sorted(a.json()["status"] for a in answers).count("stored") == 1
    with store.system(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar_one() == 1
