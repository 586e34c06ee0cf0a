"""`cmis webhooks list|retry|process` and `cmis leads list`: rows and leads, never values."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from cmis_core.cli import run
from cmis_core.errors import ExitCode
from cmis_core.settings import Settings
from cmis_core.store import Store
from cmis_core.store.tables import webhook_events
from tests.webhooks.support import body_of, connect_route, lead_of
from tests.webhooks.test_process import put


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings.environ.items():
        if name.startswith("CMIS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CMIS_PLUGINS", "example")


def test_webhooks_list_retry_and_leads_list(
    cli_env: None, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    connect_route(store, "acme")
    first, second = put(store, body_of(1, lead=lead_of(1)), body_of(2))
    with store.system() as conn:
        conn.execute(
            update(webhook_events)
            .where(webhook_events.c.id == second)
            .values(status="failed", attempts=8, error="Transient: platform down")
        )
    assert run(["webhooks", "list", "--failed", "--json"]) == ExitCode.OK
    failed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"], r["error"]) for r in failed] == [
        (second, "failed", "Transient: platform down")
    ]
    assert "body" not in failed[0]
    assert run(["webhooks", "list"]) == ExitCode.OK
    table = capsys.readouterr().out
    assert "ID" in table and str(first) in table and str(second) in table

    assert run(["webhooks", "retry", str(second)]) == ExitCode.OK
    assert run(["webhooks", "retry", "999999"]) == ExitCode.USAGE
    assert "no inbox row 999999" in capsys.readouterr().err

    # the installed example plugin parses its deliveries (the lead is not read from them)
    assert run(["webhooks", "process", "--json"]) == ExitCode.PARTIAL
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["claimed"] == 2
    assert report["processed"] == 0 and report["failed"] == 2  # nothing says how to get the leads

    with store.org(store.get_org("acme").id) as conn:
        from cmis_core.store import upsert
        from cmis_core.store.tables import leads

        upsert(
            conn,
            leads,
            [
                {
                    "platform": "example",
                    "external_id": "lead_1",
                    "form_id": "form_1",
                    "fields": {"email": "someone@example.org"},
                    "is_test": False,
                }
            ],
            ("platform", "external_id"),
        )
    assert run(["leads", "list", "--org", "acme", "--json"]) == ExitCode.OK
    out = capsys.readouterr().out
    (lead,) = json.loads(out)
    assert (lead["external_id"], lead["fields"]) == ("lead_1", ["email"])
    assert "someone@example.org" not in out
    assert run(["leads", "list", "--org", "acme"]) == ExitCode.OK
    assert "someone@example.org" not in capsys.readouterr().out
