"""A canary token stored through the vault appears nowhere in clear.

Not in a log line (ours or a library's, at debug), an exception's text, the CLI's output,
or any byte of the SQLite database file and its WAL.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

import cmis_core.logs
from cmis_core.cli import report_error, run
from cmis_core.cli.keys import load_vault
from cmis_core.errors import UndecryptableCredential
from cmis_core.logs import configure_logging
from cmis_core.settings import Settings
from cmis_core.types import TokenSet
from cmis_core.vault import Sealed, SecretKey, key_usage, rotate

CANARY = "CANARY-7c1d9e0f-access"
CANARY_REFRESH = "CANARY-7c1d9e0f-refresh"
VISIBLE = "visible-note-5b2a"  # stored in clear, to prove the byte scan sees data


@pytest.fixture
def debug_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging(force=True, fmt="json", level="debug")
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
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
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    debug_logging: None,
    make_table: Callable[[sa.Engine], sa.Table],
    make_sqlite_engine: Callable[[Path], sa.Engine],
) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({"CMIS_HOME": str(home)})
    vault = load_vault(settings)  # creates the key file and says so on stderr
    engine = make_sqlite_engine(home / "cmis.db")
    table = make_table(engine)
    log = structlog.get_logger("cmis_core.canary")
    texts: list[str] = []

    tokens = TokenSet(access_token=CANARY, refresh_token=CANARY_REFRESH, scopes=("ads_read",))
    sealed = vault.seal_tokens(tokens, org_id=1, integration_id=7)
    with engine.begin() as conn:
        conn.execute(
            table.insert().values(
                org_id=1,
                id=1,
                integration_id=7,
                key_id=sealed.key_id,
                ciphertext=sealed.ciphertext,
                version=1,
            )
        )
        conn.exec_driver_sql("CREATE TABLE notes (body TEXT)")
        conn.exec_driver_sql(f"INSERT INTO notes VALUES ('{VISIBLE}')")
    log.debug("canary.tokens", tokens=tokens, sealed=sealed, vault=vault)
    log.info("canary.mapping", body={"access_token": CANARY, "refresh_token": CANARY_REFRESH})
    log.info("canary.url", url=f"https://graph.example.com/me?access_token={CANARY}")
    logging.getLogger("httpx2").info("HTTP Request: POST %s", f"https://x.example/t?code={CANARY}")

    # Rotate to a new key with the file's key kept second, then read back under the new key.
    new_key = SecretKey.generate()
    old_keys = (home / "secret.key").read_text().strip()
    rotated = load_vault(
        Settings.from_env(
            {"CMIS_HOME": str(home), "CMIS_SECRET_KEYS": f"{new_key.encoded()},{old_keys}"}
        )
    )
    report = rotate(engine.begin, table, rotated, batch_size=1)
    assert report.rewritten == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(table)).one()
        assert key_usage(conn, table) == {new_key.id: 1}
    stored = Sealed(key_id=row.key_id, ciphertext=bytes(row.ciphertext))
    assert rotated.open_tokens(stored, org_id=1, integration_id=7) == tokens

    # Failures: an altered byte, a missing key; their text, traceback and CLI rendering.
    altered = Sealed(key_id=stored.key_id, ciphertext=stored.ciphertext[:-1] + b"\x00")
    for attempt in (
        lambda: rotated.open_tokens(altered, org_id=1, integration_id=7),
        lambda: vault.open_tokens(stored, org_id=1, integration_id=7),
    ):
        with pytest.raises(UndecryptableCredential) as info:
            attempt()
        texts.append("".join(traceback.format_exception(info.value)))
        texts.append(f"{info.value!r} {info.value.hint}")
        report_error(info.value)
        log.error("canary.failed", exc_info=info.value)
    assert run(["keys", "generate"]) == 0

    out, err = capsys.readouterr()
    assert "created the encryption key file" in err
    assert "canary.tokens" in err
    assert "httpx2" in err
    assert "sqlalchemy.engine" in err  # the library logged its statements and parameters
    assert "error: the credential of integration" in err
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
    engine.dispose()
