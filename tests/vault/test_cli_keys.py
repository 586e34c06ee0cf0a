"""`cmis keys` and how the CLI prints errors: never a secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from cmis_core.cli import cli, run
from cmis_core.cli.keys import load_vault
from cmis_core.errors import ExitCode, Transient
from cmis_core.settings import Settings
from cmis_core.vault import SecretKey, Vault

SECRET = "tok-cli-4e1f"


def test_generate_prints_a_usable_new_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keys", "generate"]) == ExitCode.OK
    first = capsys.readouterr()
    assert run(["keys", "generate"]) == ExitCode.OK
    second = capsys.readouterr()
    key = SecretKey.parse(first.out.strip(), source="output")
    assert first.out.strip() != second.out.strip()
    assert f"key id {key.id}" in first.err
    assert first.out.strip() not in first.err
    vault = Vault.from_keys([first.out.strip()])
    assert vault.primary_key_id == key.id


def test_load_vault_says_where_it_created_the_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({"CMIS_HOME": str(tmp_path)})
    load_vault(settings)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"created the encryption key file {tmp_path / 'secret.key'}" in err
    load_vault(settings)
    assert capsys.readouterr().err == ""


def test_postgres_without_keys_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    @cli.command("vault-probe")
    def probe() -> None:
        env = {"CMIS_HOME": str(tmp_path), "CMIS_DATABASE_URL": "postgresql+psycopg://x@db/cmis"}
        load_vault(Settings.from_env(env))

    try:
        assert run(["vault-probe"]) == ExitCode.USAGE
    finally:
        cli.commands.pop("vault-probe")
    assert "error: CMIS_SECRET_KEYS is not set" in capsys.readouterr().err


@pytest.fixture
def failing_commands() -> Iterator[None]:
    @cli.command("fail-bug")
    def bug() -> None:
        raise RuntimeError(f"GET https://api.example.com/me?access_token={SECRET}\nforged")

    @cli.command("fail-known")
    def known() -> None:
        raise Transient(f"upstream said Bearer {SECRET}", hint=f"see ?code={SECRET}")

    yield
    for name in ("fail-bug", "fail-known"):
        cli.commands.pop(name)


@pytest.mark.usefixtures("failing_commands")
@pytest.mark.parametrize(("command", "code"), [("fail-bug", 70), ("fail-known", 1)])
def test_errors_print_without_secrets(
    capsys: pytest.CaptureFixture[str], command: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CMIS_DEBUG", raising=False)
    assert run([command]) == code
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "[redacted]" in err
    assert all(line.startswith(("error: ", "hint: ")) for line in err.splitlines())


def test_click_is_the_group() -> None:
    assert isinstance(cli, click.Group)
    assert "keys" in cli.list_commands(click.Context(cli))


def test_status_rows_show_each_key_and_the_missing_ones(key_a: SecretKey, key_b: SecretKey) -> None:
    from cmis_core.cli.keys import status_rows

    vault = Vault([key_b, key_a])
    rows = status_rows(vault, {key_a.id: 3, "0badbeef": 2, key_b.id: 5, "00000000": 0})
    assert rows == [
        {"key_id": key_b.id, "role": "sealing", "credentials": 5},
        {"key_id": key_a.id, "role": "old", "credentials": 3},
        {"key_id": "0badbeef", "role": "not configured", "credentials": 2},
    ]


def test_rotation_lines_say_when_old_keys_can_go(key_a: SecretKey, key_b: SecretKey) -> None:
    from cmis_core.cli.keys import rotation_lines
    from cmis_core.vault import RotationReport

    done = RotationReport(primary_key_id=key_b.id, rewritten=7, remaining={})
    assert rotation_lines(done) == [
        f"rewrote 7 credential(s) under key {key_b.id}",
        "no credential uses an old key: old keys can be removed",
    ]
    left = RotationReport(
        primary_key_id=key_b.id, rewritten=2, conflicts=1, remaining={key_a.id: 1}
    )
    assert rotation_lines(left)[1:] == [
        "1 changed by another writer meanwhile (retried)",
        f"1 credential(s) still use key {key_a.id}",
        "run `cmis keys rotate` again before removing any old key",
    ]
