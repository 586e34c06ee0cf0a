"""`cmis keys status` and `cmis keys rotate` on the real store, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from cmis_core.cli import run
from cmis_core.cli.keys import credential_usage
from cmis_core.errors import ExitCode
from cmis_core.store import Store, tables
from cmis_core.testing.databases import TestDatabase
from cmis_core.vault import SecretKey, Vault

from .seed import open_every_credential, seed


def use(monkeypatch: pytest.MonkeyPatch, database: TestDatabase, *keys: SecretKey) -> None:
    for name, value in database.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CMIS_SECRET_KEYS", ",".join(k.encoded() for k in keys))
    monkeypatch.setenv("CMIS_LOG_FORMAT", "json")


def status(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]], str]:
    code = run(["keys", "status", "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_rotate_then_drop_the_old_key(
    store: Store,
    database: TestDatabase,
    key_a: SecretKey,
    key_b: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org_ids = seed(store, Vault([key_a]), orgs=2, per_org=25)
    use(monkeypatch, database, key_b, key_a)
    assert status(capsys)[:2] == (
        0,
        [
            {"key_id": key_b.id, "role": "sealing", "credentials": 0},
            {"key_id": key_a.id, "role": "old", "credentials": 50},
        ],
    )
    assert run(["keys", "rotate", "--batch-size", "7"]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"rewrote 50 credential(s) under key {key_b.id}",
        "no credential uses an old key: old keys can be removed",
    ]
    batches = [json.loads(line) for line in err.splitlines()]
    assert [b["org_id"] for b in batches] == [org_ids[0]] * 4 + [org_ids[1]] * 4
    use(monkeypatch, database, key_b)
    assert status(capsys)[:2] == (0, [{"key_id": key_b.id, "role": "sealing", "credentials": 50}])
    assert open_every_credential(store, Vault([key_b]), org_ids) == 50
    assert credential_usage(store) == {key_b.id: 50}


def test_a_key_no_longer_configured_is_exit_2_naming_it(
    store: Store,
    database: TestDatabase,
    key_a: SecretKey,
    key_b: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(store, Vault([key_a]), orgs=1, per_org=3)
    use(monkeypatch, database, key_b)
    code, rows, err = status(capsys)
    assert code == ExitCode.USAGE
    assert rows[-1] == {"key_id": key_a.id, "role": "not configured", "credentials": 3}
    assert f"error: 3 credential(s) are sealed with key(s) {key_a.id}" in err
    assert run(["keys", "rotate"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"is sealed with key {key_a.id}, which is not configured" in err
    assert credential_usage(store) == {key_a.id: 3}  # nothing was changed


def test_an_altered_ciphertext_stops_rotation_with_a_clear_error(
    store: Store,
    database: TestDatabase,
    key_a: SecretKey,
    key_b: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (org_id,) = seed(store, Vault([key_a]), orgs=1, per_org=3)
    c = tables.credentials.c
    with store.org(org_id) as conn:
        row = conn.execute(sa.select(c.id, c.integration_id, c.ciphertext).limit(1)).one()
        altered = bytearray(row.ciphertext)
        altered[-5] ^= 0x01
        conn.execute(
            sa.update(tables.credentials).where(c.id == row.id).values(ciphertext=bytes(altered))
        )
    use(monkeypatch, database, key_b, key_a)
    assert run(["keys", "rotate"]) == ExitCode.USAGE
    out, err = capsys.readouterr()
    assert (
        f"error: the credential of integration {row.integration_id} (org {org_id}) "
        f"does not open with key {key_a.id}"
    ) in err
    assert bytes(altered).hex() not in out + err


def test_a_rotation_killed_with_sigkill_completes_when_run_again(
    store: Store, database: TestDatabase, key_a: SecretKey, key_b: SecretKey
) -> None:
    org_ids = seed(store, Vault([key_a]), orgs=2, per_org=1000)
    env = {
        **os.environ,
        **database.environ(),
        "CMIS_SECRET_KEYS": f"{key_b.encoded()},{key_a.encoded()}",
        "CMIS_LOG_FORMAT": "json",
        "CMIS_LOG_LEVEL": "info",
    }
    command = [sys.executable, "-m", "cmis_core", "keys", "rotate", "--batch-size", "50"]
    worker = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert worker.stderr is not None
        seen = 0
        while seen < 2:
            line = worker.stderr.readline()
            assert line, "the rotation ended before it could be killed"
            if '"keys.rotate_batch"' in line:
                seen += 1
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    usage = credential_usage(store)
    assert usage[key_b.id] >= 100
    assert usage[key_a.id] > 0
    assert usage[key_a.id] + usage[key_b.id] == 2000
    assert open_every_credential(store, Vault([key_b, key_a]), org_ids) == 2000
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[0]
        == f"rewrote {usage[key_a.id]} credential(s) under key {key_b.id}"
    )
    assert credential_usage(store) == {key_b.id: 2000}
    assert open_every_credential(store, Vault([key_b]), org_ids) == 2000


def test_postgres_without_keys_is_exit_2(
    postgres_database: TestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in postgres_database.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CMIS_SECRET_KEYS", raising=False)
    assert run(["keys", "status"]) == ExitCode.USAGE
    assert "error: CMIS_SECRET_KEYS is not set" in capsys.readouterr().err
    assert not Path(postgres_database.home, "secret.key").exists()
