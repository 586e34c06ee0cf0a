"""The short path of `/webhooks/{platform}` (past starlette), its access log, its deadlines,
and uvicorn's protocol that sends each answer in one write."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from cmis_core.contract import ASGIApp
from cmis_core.service.app import create_app
from cmis_core.service.corked import CorkedHttpToolsProtocol
from cmis_core.store import Store
from cmis_core.store.tables import webhook_events
from cmis_core.testing.databases import TestDatabase
from cmis_core.webhooks.deadlines import Deadlines
from cmis_core.webhooks.delivery import Delivery
from tests.webhooks.support import VERIFY_TOKEN, body_of, env, registry_with, signed


def keys(store: Store) -> list[str]:
    with store.system(write=False) as conn:
        return sorted(conn.execute(select(webhook_events.c.dedupe_key)).scalars())


def test_under_a_root_path_the_starlette_route_answers_the_same(
    database: TestDatabase, store: Store
) -> None:
    settings = database.settings(**env())
    app = create_app(settings, store=store, registry=registry_with(settings))
    body = body_of("routed")
    headers = signed(body)
    with TestClient(app, root_path="/base") as client:  # mounted: starlette routes it
        first = client.post("/base/webhooks/example", content=body, headers=headers)
        again = client.post("/base/webhooks/example", content=body, headers=headers)
        assert (first.json(), again.json()) == ({"status": "stored"}, {"status": "duplicate"})
        unknown = client.post("/base/webhooks/nosuch", content=body, headers=headers)
        assert unknown.status_code == 404
        assert client.post("/base/webhooks/example/x", content=body).status_code == 404
    with TestClient(app) as client:
        assert client.post("/webhooks/example/x", content=body).status_code == 404
    assert keys(store) == ["id:evt_routed"]


def test_an_unexpected_error_is_a_json_500_and_logged(database: TestDatabase, store: Store) -> None:
    settings = database.settings(**env())
    app = create_app(settings, store=store, registry=registry_with(settings))
    body = body_of("boom")

    async def broken(delivery: Delivery, *, within: float) -> bool:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client, capture_logs() as logs:
        app.state.cmis.shared["webhooks.receiver"].writer.store = broken
        answer = client.post("/webhooks/example", content=body, headers=signed(body))
    assert (answer.status_code, answer.json()) == (500, {"error": "internal error"})
    [line] = [e for e in logs if e["event"] == "http.access"]
    assert (line["path"], line["status"]) == ("/webhooks/example", 500)
    assert keys(store) == []


def test_access_lines_of_webhooks_mask_the_query_and_keep_every_refusal(
    database: TestDatabase, store: Store
) -> None:
    settings = database.settings(**env(), CMIS_ACCESS_LOG_EVERY="3")
    app = create_app(settings, store=store, registry=registry_with(settings))
    with TestClient(app) as client, capture_logs() as logs:
        for n in range(6):
            body = body_of(f"sampled-{n}")
            assert client.post("/webhooks/example", content=body, headers=signed(body)).is_success
        for n in range(2):
            body = body_of(f"forged-{n}")
            forged = signed(body, secret="not-the-secret")
            assert client.post("/webhooks/example", content=body, headers=forged).status_code == 401
        shake = client.get(
            "/webhooks/example",
            params={"mode": "subscribe", "challenge": "c-9", "verify_token": VERIFY_TOKEN},
        )
        assert shake.text == "c-9"
    lines = [e for e in logs if e["event"] == "http.access"]
    assert sorted(e["status"] for e in lines) == [200, 200, 401, 401]  # 7 answers of 200
    assert VERIFY_TOKEN not in repr(logs) and "c-9" not in repr(logs)


async def test_deadlines_cancel_the_late_and_tell_it_apart() -> None:
    deadlines = Deadlines(tick=0.01)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def late() -> str:
        task = deadlines.watch(0.03)
        try:
            await never
        except asyncio.CancelledError:
            return "deadline" if deadlines.done(task) else "cancelled"
        return "finished"

    async def prompt() -> bool:
        task = deadlines.watch(5)
        await asyncio.sleep(0)
        return deadlines.done(task)

    started = time.monotonic()
    assert await late() == "deadline"
    assert 0.03 <= time.monotonic() - started < 1
    assert await prompt() is False
    other = asyncio.ensure_future(late())
    await asyncio.sleep(0)
    other.cancel()  # not the deadline: the caller sees its own cancellation
    assert await other == "cancelled"


# --- uvicorn with the corked protocol, over a real socket


async def _echo(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()  # type: ignore[operator]
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"x-len", b"%d" % len(body))]}
    )  # type: ignore[operator]
    for part in (b"one,", b"two"):  # a streamed (chunked) answer
        await send({"type": "http.response.body", "body": part, "more_body": True})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


@contextlib.contextmanager
def corked_server(app: ASGIApp) -> Iterator[int]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, http=CorkedHttpToolsProtocol, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_the_corked_protocol_answers_in_order_with_keep_alive_and_close() -> None:
    pytest.importorskip("httptools")
    with corked_server(_echo) as port:  # type: ignore[arg-type]
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(3):  # one connection, kept alive
                answer = client.post("/", content=b"x" * (n * 100_000))
                assert (answer.status_code, answer.text) == (200, "one,two")
                assert answer.headers["x-len"] == str(n * 100_000)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := raw.recv(65536):  # the server closes after the whole answer
                data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n")
