"""Database down: the service answers 503 (the platform retries), never 200 unstored;
once the database is back the redelivery is accepted and stored once."""

from __future__ import annotations

import sqlite3

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from cmis_core.service.app import create_app
from cmis_core.store import open_store
from cmis_core.store.tables import webhook_events
from cmis_core.testing.databases import TestDatabase
from cmis_core.webhooks.metrics import parse_text
from tests.webhooks.proxy import Proxy
from tests.webhooks.support import body_of, env, registry_with, signed

REJECTED = (
    'cmis_webhook_rejections_total{platform="example",reason="inbox_unavailable",status="503"}'
)


def count_rows(database: TestDatabase) -> int:
    with open_store(database.settings()) as store, store.system(write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(webhook_events)).scalar_one())


def test_postgres_down_is_503_then_accepted_when_back(postgres_database: TestDatabase) -> None:
    url = make_url(postgres_database.url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = postgres_database.settings(
        **env(), CMIS_DATABASE_URL=proxied, CMIS_WEBHOOK_COMMIT_TIMEOUT="2"
    )
    store = open_store(settings)
    app = create_app(settings, store=store, registry=registry_with(settings))
    first, second = body_of(1), body_of(2)
    try:
        with TestClient(app) as client:
            assert client.post(
                "/webhooks/example", content=first, headers=signed(first)
            ).json() == {"status": "stored"}
            proxy.stop()  # the open inbox connection is cut, new ones are refused
            for _ in range(2):
                down = client.post("/webhooks/example", content=second, headers=signed(second))
                assert down.status_code == 503
                assert down.json() == {"error": "inbox_unavailable"}
            metrics = parse_text(client.get("/metrics").text)
            assert metrics[REJECTED] == 2
            assert metrics["cmis_webhook_inbox_up"] == 0
            proxy.start()
            back = client.post("/webhooks/example", content=second, headers=signed(second))
            assert (back.status_code, back.json()) == (200, {"status": "stored"})
    finally:
        proxy.stop()
        store.close()
    assert count_rows(postgres_database) == 2


def test_sqlite_locked_is_503_then_accepted_once_free(sqlite_database: TestDatabase) -> None:
    settings = sqlite_database.settings(**env(), CMIS_WEBHOOK_COMMIT_TIMEOUT="0.5")
    store = open_store(settings)
    app = create_app(settings, store=store, registry=registry_with(settings))
    body = body_of(1)
    blocker = sqlite3.connect(str(sqlite_database.home / "cmis.db"), isolation_level=None)
    try:
        with TestClient(app) as client:
            blocker.execute("BEGIN EXCLUSIVE")
            busy = client.post("/webhooks/example", content=body, headers=signed(body))
            assert busy.status_code == 503
            blocker.execute("ROLLBACK")
            answers = [
                client.post("/webhooks/example", content=body, headers=signed(body))
                for _ in range(2)
            ]
            assert [a.status_code for a in answers] == [200, 200]
            assert answers[-1].json() == {"status": "duplicate"}
    finally:
        blocker.close()
        store.close()
    assert count_rows(sqlite_database) == 1


def test_nothing_is_acknowledged_before_its_commit(sqlite_database: TestDatabase) -> None:
    """A 200 means the row is readable by another connection at that moment."""
    settings = sqlite_database.settings(**env())
    store = open_store(settings)
    app = create_app(settings, store=store, registry=registry_with(settings))
    try:
        with TestClient(app) as client:
            for n in range(20):
                body = body_of(n)
                answer = client.post("/webhooks/example", content=body, headers=signed(body))
                assert answer.json() == {"status": "stored"}
                assert count_rows(sqlite_database) == n + 1
    finally:
        store.close()
