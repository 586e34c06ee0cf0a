"""Keys: ids, parsing, CMIS_SECRET_KEYS, and the SQLite key file."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from cmis_core.errors import ConfigurationError, ExitCode, MissingSetting
from cmis_core.settings import Settings
from cmis_core.vault import KEY_FILE_NAME, SecretKey, Vault


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"CMIS_HOME": str(tmp_path / "home"), **env})


def test_key_ids_are_short_stable_and_distinct(key_a: SecretKey, key_b: SecretKey) -> None:
    again = SecretKey.parse(key_a.encoded(), source="test")
    assert again.id == key_a.id
    assert len(key_a.id) == 8
    assert int(key_a.id, 16) >= 0
    assert key_a.id != key_b.id
    assert key_a.id not in key_a.encoded()
    assert key_a.id not in key_a.material.hex()


def test_keys_parse_without_padding(key_a: SecretKey) -> None:
    assert SecretKey.parse(key_a.encoded().rstrip("="), source="t").material == key_a.material


def test_the_first_key_of_cmis_secret_keys_seals(
    tmp_path: Path, key_a: SecretKey, key_b: SecretKey
) -> None:
    env = {"CMIS_SECRET_KEYS": f"{key_b.encoded()}, {key_a.encoded()},{key_b.encoded()}"}
    vault = Vault.from_settings(settings(tmp_path, **env))
    assert vault.key_ids == (key_b.id, key_a.id)
    assert vault.primary_key_id == key_b.id
    assert not (tmp_path / "home" / KEY_FILE_NAME).exists()


@pytest.mark.parametrize("bad", ["not-a-key", "c2hvcnQ=", "!!!!"])
def test_a_malformed_key_names_its_position_not_its_value(
    tmp_path: Path, key_a: SecretKey, bad: str
) -> None:
    env = {"CMIS_SECRET_KEYS": f"{key_a.encoded()},{bad}"}
    with pytest.raises(ConfigurationError) as info:
        Vault.from_settings(settings(tmp_path, **env))
    assert "CMIS_SECRET_KEYS entry 2" in info.value.message
    assert bad not in info.value.message
    assert key_a.encoded() not in info.value.message
    assert info.value.exit_code == ExitCode.USAGE


def test_postgres_without_keys_is_a_missing_setting(tmp_path: Path) -> None:
    env = {"CMIS_DATABASE_URL": "postgresql+psycopg://cmis@db/cmis"}
    with pytest.raises(MissingSetting) as info:
        Vault.from_settings(settings(tmp_path, **env))
    assert info.value.variable == "CMIS_SECRET_KEYS"
    assert info.value.exit_code == ExitCode.USAGE
    assert not (tmp_path / "home").exists()


def test_sqlite_creates_a_private_key_file_once(tmp_path: Path) -> None:
    created: list[Path] = []
    first = Vault.from_settings(settings(tmp_path), on_key_file_created=created.append)
    path = tmp_path / "home" / KEY_FILE_NAME
    assert created == [path]
    assert first.key_file == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE_NAME]
    second = Vault.from_settings(settings(tmp_path), on_key_file_created=created.append)
    assert created == [path]
    assert second.key_ids == first.key_ids
    sealed = first.encrypt(b"v", context=("x",))
    assert second.decrypt(sealed, context=("x",)) == b"v"


def _load_key_id(home: str, barrier: Any, out: Any) -> None:
    created: list[Path] = []
    barrier.wait()
    vault = Vault.from_settings(
        Settings.from_env({"CMIS_HOME": home}), on_key_file_created=created.append
    )
    out.put((vault.primary_key_id, len(created)))


def test_processes_racing_to_create_the_key_file_agree(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = 6
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    home = str(tmp_path / "home")
    procs = [ctx.Process(target=_load_key_id, args=(home, barrier, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert len({key_id for key_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    path = tmp_path / "home" / KEY_FILE_NAME
    assert len(path.read_text().split()) == 1
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE_NAME]


def test_a_key_file_holding_no_key_is_a_configuration_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / KEY_FILE_NAME).write_text("\n")
    with pytest.raises(ConfigurationError, match="holds no key"):
        Vault.from_settings(settings(tmp_path))


def test_a_garbled_key_file_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / KEY_FILE_NAME).write_text("garbage-value\n")
    with pytest.raises(ConfigurationError) as info:
        Vault.from_settings(settings(tmp_path))
    assert str(home / KEY_FILE_NAME) in info.value.message
    assert "garbage-value" not in info.value.message
