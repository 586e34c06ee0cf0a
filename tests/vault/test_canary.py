"""A canary token stored through the vault appears nowhere in clear.

Not in a log line (ours or a library's, at debug, SQL statements included), an
exception's text, the CLI's output, or any byte of the SQLite database file and its WAL.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import structlog

import cmis_core.logs
from cmis_core.cli import run
from cmis_core.errors import ExitCode, UndecryptableCredential
from cmis_core.logs import configure_logging
from cmis_core.store import open_store, tables
from cmis_core.testing.databases import TestDatabase
from cmis_core.types import TokenSet
from cmis_core.vault import Sealed, SecretKey, Vault

CANARY = "CANARY-7c1d9e0f-access"
CANARY_REFRESH = "CANARY-7c1d9e0f-refresh"
VISIBLE = "visible-org-5b2a"  # stored in clear, to prove the byte scan sees the data


@pytest.fixture
def debug_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    monkeypatch.setenv("CMIS_LOG_FORMAT", "json")
    monkeypatch.setenv("CMIS_LOG_LEVEL", "debug")
    configure_logging(force=True)
    yield
    logging.getLogger("sqlalchemy.engine").setLevel(logging.NOTSET)
    structlog.reset_defaults()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    cmis_core.logs._configured = False


def test_the_canary_appears_nowhere_in_clear(
    sqlite_database: TestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug_logging: None,
) -> None:
    home = sqlite_database.home
    for name, value in sqlite_database.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CMIS_SECRET_KEYS", raising=False)
    log = structlog.get_logger("cmis_core.canary")
    texts: list[str] = []

    # First use: `cmis keys status` creates the key file and the database.
    assert run(["keys", "status"]) == ExitCode.OK
    file_key = (home / "secret.key").read_text().strip()
    vault = Vault.from_keys([file_key])
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)  # statements and values
    store = open_store(sqlite_database.settings())
    org = store.create_org(VISIBLE)
    tokens = TokenSet(access_token=CANARY, refresh_token=CANARY_REFRESH, scopes=("ads_read",))
    with store.org(org.id) as conn:
        for platform in ("meta", "google"):
            integration_id = conn.execute(
                sa.insert(tables.integrations)
                .values(org_id=org.id, platform=platform)
                .returning(tables.integrations.c.id)
            ).scalar_one()
            sealed = vault.seal_tokens(tokens, org_id=org.id, integration_id=integration_id)
            conn.execute(
                sa.insert(tables.credentials).values(
                    org_id=org.id,
                    integration_id=integration_id,
                    key_id=sealed.key_id,
                    ciphertext=sealed.ciphertext,
                )
            )
    log.debug("canary.tokens", tokens=tokens, sealed=sealed, vault=vault)
    log.info("canary.mapping", body={"access_token": CANARY, "refresh_token": CANARY_REFRESH})
    log.info("canary.url", url=f"https://graph.example.com/me?access_token={CANARY}")
    logging.getLogger("httpx2").warning(
        "HTTP Request: POST %s", f"https://x.example/t?code={CANARY}"
    )

    # Rotate to a new key, the file's key second; read back under the new key alone.
    new_key = SecretKey.generate()
    monkeypatch.setenv("CMIS_SECRET_KEYS", f"{new_key.encoded()},{file_key}")
    assert run(["keys", "rotate", "--batch-size", "1"]) == ExitCode.OK
    assert run(["keys", "status", "--json"]) == ExitCode.OK
    c = tables.credentials.c
    with store.org(org.id, write=False) as conn:
        rows = conn.execute(sa.select(c.integration_id, c.key_id, c.ciphertext)).all()
    stored = [
        (r.integration_id, Sealed(key_id=r.key_id, ciphertext=bytes(r.ciphertext))) for r in rows
    ]
    for integration_id, sealed in stored:
        assert sealed.key_id == new_key.id
        opened = Vault([new_key]).open_tokens(sealed, org_id=org.id, integration_id=integration_id)
        assert opened == tokens

    # Failures: an altered byte, a missing key; their text, traceback and CLI rendering.
    (first_id, first), (_, second) = stored
    altered = bytearray(first.ciphertext)
    altered[-1] ^= 0x01
    with store.org(org.id) as conn:
        conn.execute(
            sa.update(tables.credentials)
            .where(c.integration_id == first_id)
            .values(ciphertext=bytes(altered))
        )
    for attempt in (
        lambda: Vault([new_key]).open_tokens(
            Sealed(key_id=new_key.id, ciphertext=bytes(altered)),
            org_id=org.id,
            integration_id=first_id,
        ),
        lambda: vault.open_tokens(second, org_id=org.id, integration_id=first_id),
    ):
        with pytest.raises(UndecryptableCredential) as info:
            attempt()
        texts.append("".join(traceback.format_exception(info.value)))
        texts.append(f"{info.value!r} {info.value.hint}")
        log.error("canary.failed", exc_info=info.value)
    monkeypatch.setenv("CMIS_SECRET_KEYS", file_key)  # the new key is missing
    assert run(["keys", "rotate"]) == ExitCode.USAGE
    assert run(["keys", "status"]) == ExitCode.USAGE
    store.close()

    out, err = capsys.readouterr()
    assert "created the encryption key file" in err
    assert "canary.tokens" in err
    assert '"logger": "httpx2"' in err
    assert '"logger": "sqlalchemy.engine.Engine"' in err  # statements and parameters logged
    assert f"is sealed with key {new_key.id}, which is not configured" in err
    assert "2 credential(s) still use" not in out
    files = [home / "cmis.db", home / "cmis.db-wal"]
    database = b"".join(path.read_bytes() for path in files if path.exists())
    assert VISIBLE.encode() in database
    for clear in (CANARY, CANARY_REFRESH):
        assert clear not in out
        assert clear not in err
        for text in texts:
            assert clear not in text
        assert clear.encode() not in database
        for encoded in (clear.encode("utf-16-le"), clear.encode().hex().encode()):
            assert encoded not in database
