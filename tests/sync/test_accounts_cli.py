"""`cmis accounts list|enable|disable`: what sync reads, chosen per account."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cmis_core.cli import run
from cmis_core.errors import ExitCode
from cmis_core.store import Store, tables
from cmis_core.sync.state import account_records
from cmis_core.testing.databases import TestDatabase

from .helpers import add_integration


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """The CLI configures structlog onto pytest's captured stderr; undo it afterwards."""
    import structlog

    from cmis_core import logs

    config = structlog.get_config()
    configured = logs._configured
    yield
    structlog.configure(**config)
    logs._configured = configured


@pytest.fixture
def org(store: Store, database: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in database.environ().items():
        monkeypatch.setenv(key, value)
    created = store.create_org("agency")
    integration = add_integration(store, created.id, "meta")
    rows = [
        {
            "platform": "meta",
            "external_id": f"act_{i}",
            "integration_id": integration,
            "name": f"Client {i}",
            "currency": "EUR",
            "status": "active",
        }
        for i in range(1, 6)
    ]
    store.upsert(created.id, tables.ad_accounts, rows, ("platform", "external_id"))
    return created.id


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert run(["accounts", "list", "--org", "agency", "--json", *args]) == ExitCode.OK
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_disable_enable_and_what_sync_reads(
    org: int, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert all(r["sync_enabled"] is True for r in listed(capsys))
    assert run(["accounts", "disable", "--org", "agency", "--all"]) == ExitCode.OK
    assert run(["accounts", "enable", "--org", "agency", "act_2", "act_4"]) == ExitCode.OK
    assert "enabled 2 accounts of agency" in capsys.readouterr().out
    enabled = {r["external_id"] for r in listed(capsys) if r["sync_enabled"]}
    assert enabled == {"act_2", "act_4"}
    with store.org(org, write=False) as conn:
        assert [a["external_id"] for a in account_records(conn, "meta", 1)] == ["act_2", "act_4"]
    assert listed(capsys, "--platform", "google") == []


def test_unknown_account_is_a_usage_error_and_changes_nothing(
    org: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["accounts", "disable", "--org", "agency", "act_1", "act_99"]) == ExitCode.USAGE
    assert "1 of the accounts named are not known" in capsys.readouterr().err
    assert all(r["sync_enabled"] for r in listed(capsys))
    assert run(["accounts", "disable", "--org", "agency"]) == ExitCode.USAGE
