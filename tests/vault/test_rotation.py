"""Rotation re-seals every credential under the newest key, in resumable batches."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cmis_core.errors import UndecryptableCredential
from cmis_core.types import TokenSet
from cmis_core.vault import (
    BatchResult,
    Sealed,
    SecretKey,
    Vault,
    key_usage,
    rotate,
)
from tests.vault.conftest import sqlite_engine

MakeTable = Callable[[sa.Engine], sa.Table]


def token_for(row_id: int) -> TokenSet:
    return TokenSet(access_token=f"tok-{row_id}", refresh_token=f"ref-{row_id}")


def fill(engine: sa.Engine, table: sa.Table, vault: Vault, count: int) -> list[int]:
    """``count`` rows sealed by ``vault``: row ``n`` has id ``n + 1``, organisation
    ``n % 2 + 1`` (odd ids in org 1, even ids in org 2) and integration ``1000 + n``."""
    rows = []
    for n in range(count):
        row_id, org_id, integration_id = n + 1, n % 2 + 1, 1000 + n
        sealed = vault.seal_tokens(token_for(row_id), org_id=org_id, integration_id=integration_id)
        rows.append(
            {
                "id": row_id,
                "org_id": org_id,
                "integration_id": integration_id,
                "key_id": sealed.key_id,
                "ciphertext": sealed.ciphertext,
                "version": 3,
                "updated_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            }
        )
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return [r["id"] for r in rows]


def open_all(engine: sa.Engine, table: sa.Table, vault: Vault) -> dict[int, TokenSet]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table)).all()
    return {
        row.id: vault.open_tokens(
            Sealed(key_id=row.key_id, ciphertext=bytes(row.ciphertext)),
            org_id=row.org_id,
            integration_id=row.integration_id,
        )
        for row in rows
    }


def test_rotate_then_drop_the_old_key(
    engine: sa.Engine, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey
) -> None:
    table = make_table(engine)
    ids = fill(engine, table, Vault([key_a]), 230)
    batches: list[BatchResult] = []
    report = rotate(
        engine.begin, table, Vault([key_b, key_a]), batch_size=40, on_batch=batches.append
    )
    assert report.rewritten == 230
    assert report.conflicts == 0
    assert report.complete
    assert report.remaining == {}
    assert [b.rewritten for b in batches] == [40] * 5 + [30]
    with engine.connect() as conn:
        assert key_usage(conn, table) == {key_b.id: 230}
        versions = set(conn.execute(sa.select(table.c.version)).scalars())
        stamps = set(conn.execute(sa.select(table.c.updated_at)).scalars())
    assert versions == {3}  # same plaintext: not a new credential version
    assert len(stamps) == 1
    opened = open_all(engine, table, Vault([key_b]))  # the old key is gone
    assert opened == {row_id: token_for(row_id) for row_id in ids}
    again = rotate(engine.begin, table, Vault([key_b]), batch_size=40)
    assert again.rewritten == 0
    assert again.complete


def test_an_interrupted_rotation_resumes(
    engine: sa.Engine, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey
) -> None:
    table = make_table(engine)
    ids = fill(engine, table, Vault([key_a]), 100)
    both = Vault([key_b, key_a])
    seen: list[BatchResult] = []

    def crash(batch: BatchResult) -> None:
        seen.append(batch)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate(engine.begin, table, both, batch_size=15, on_batch=crash)
    with engine.connect() as conn:
        assert key_usage(conn, table) == {key_a.id: 70, key_b.id: 30}
    assert open_all(engine, table, both) == {i: token_for(i) for i in ids}
    report = rotate(engine.begin, table, both, batch_size=15)
    assert report.rewritten == 70
    assert report.complete
    assert open_all(engine, table, Vault([key_b])) == {i: token_for(i) for i in ids}


def test_the_report_counts_rows_left_under_each_old_key(
    engine: sa.Engine, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey
) -> None:
    table = make_table(engine)
    key_c = SecretKey.generate()
    fill(engine, table, Vault([key_a]), 6)
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.id.in_([1, 2])).values(key_id=key_c.id))
        assert key_usage(conn, table) == dict(sorted({key_a.id: 4, key_c.id: 2}.items()))
    with pytest.raises(UndecryptableCredential, match=key_c.id):
        rotate(engine.begin, table, Vault([key_b, key_a]), batch_size=10)


class _InterferingVault(Vault):
    """A vault that, while re-sealing row ``target``, lets another writer change that row."""

    def __init__(self, keys: list[SecretKey], write: Any) -> None:
        super().__init__(keys)
        self.write = write

    def reencrypt(self, sealed: Sealed, *, context: Any) -> Sealed:
        if context[2] == "1004" and self.write is not None:
            write, self.write = self.write, None
            write()
        return super().reencrypt(sealed, context=context)


@pytest.mark.parametrize("writer_key", ["new", "old"])
def test_a_concurrent_writer_is_never_overwritten(
    engine: sa.Engine, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey, writer_key: str
) -> None:
    table = make_table(engine)
    ids = fill(engine, table, Vault([key_a]), 10)
    fresh = TokenSet(access_token="refreshed-meanwhile")
    writer_vault = Vault([key_b] if writer_key == "new" else [key_a])
    current: list[sa.Connection] = []

    @contextmanager
    def begin() -> Iterator[sa.Connection]:
        with engine.begin() as conn:
            current.append(conn)
            yield conn

    def write() -> None:
        sealed = writer_vault.seal_tokens(fresh, org_id=1, integration_id=1004)
        change = (
            table.update()
            .where(table.c.id == 5)
            .values(key_id=sealed.key_id, ciphertext=sealed.ciphertext, version=table.c.version + 1)
        )
        if engine.dialect.name == "sqlite":  # the rotation holds SQLite's write lock
            current[-1].execute(change)
        else:  # a real second session, committed before the rotation's update
            with engine.begin() as other:
                other.execute(change)

    vault = _InterferingVault([key_b, key_a], write)
    report = rotate(begin, table, vault, batch_size=4)
    assert report.conflicts == 1
    assert report.rewritten == (10 if writer_key == "old" else 9)
    assert report.complete
    opened = open_all(engine, table, Vault([key_b]))
    assert opened[5] == fresh
    assert {i: t for i, t in opened.items() if i != 5} == {i: token_for(i) for i in ids if i != 5}
    with engine.connect() as conn:
        version = conn.execute(sa.select(table.c.version).where(table.c.id == 5)).scalar()
    assert version == 4


def test_an_undecryptable_row_stops_rotation_and_keeps_its_batch_unchanged(
    engine: sa.Engine, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey
) -> None:
    table = make_table(engine)
    fill(engine, table, Vault([key_a]), 30)
    with engine.begin() as conn:
        blob = bytearray(
            conn.execute(sa.select(table.c.ciphertext).where(table.c.id == 6)).scalar_one()
        )
        blob[20] ^= 0xFF
        conn.execute(table.update().where(table.c.id == 6).values(ciphertext=bytes(blob)))
    with pytest.raises(UndecryptableCredential) as info:
        rotate(engine.begin, table, Vault([key_b, key_a]), batch_size=10)
    assert key_a.id in info.value.message
    assert "integration 1005" in info.value.message
    with engine.connect() as conn:
        assert key_usage(conn, table) == dict(sorted({key_a.id: 20, key_b.id: 10}.items()))


def _org_begin(engine: sa.Engine, org_id: int) -> AbstractContextManager[sa.Connection]:
    @contextmanager
    def begin() -> Iterator[sa.Connection]:
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.set_config("cmis.org_id", str(org_id), True)))
            yield conn

    return begin()


@pytest.mark.postgres
def test_rotation_runs_org_by_org_under_forced_row_level_security(
    postgres_url: str, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey
) -> None:
    from cmis_core.vault import rotate_organizations

    owner = sa.create_engine(postgres_url)
    role = "cmis_vault_app_" + postgres_url.rsplit("_", 1)[-1]
    table = make_table(owner)
    ids = fill(owner, table, Vault([key_a]), 40)
    with owner.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT, UPDATE ON credentials TO {role}")
        conn.exec_driver_sql("ALTER TABLE credentials ENABLE ROW LEVEL SECURITY")
        conn.exec_driver_sql("ALTER TABLE credentials FORCE ROW LEVEL SECURITY")
        conn.exec_driver_sql(
            "CREATE POLICY tenant ON credentials USING "
            "(org_id = current_setting('cmis.org_id', true)::bigint) "
            "WITH CHECK (org_id = current_setting('cmis.org_id', true)::bigint)"
        )
    app = sa.create_engine(sa.make_url(postgres_url).set(username=role))
    try:
        vault = Vault([key_b, key_a])
        blind = rotate(app.begin, table, vault, batch_size=7)  # no org context: sees nothing
        assert blind.rewritten == 0
        seen: list[int] = []
        report = rotate_organizations(
            [1, 2],
            lambda org: _org_begin(app, org),
            table,
            vault,
            batch_size=7,
            on_batch=lambda org, _batch: seen.append(org),
        )
        assert report.rewritten == 40
        assert report.complete
        assert seen == [1] * 3 + [2] * 3
        with owner.connect() as conn:
            assert key_usage(conn, table) == {key_b.id: 40}
        assert open_all(owner, table, Vault([key_b])) == {i: token_for(i) for i in ids}
    finally:
        app.dispose()
        with owner.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()


def test_a_rotation_killed_inside_a_transaction_completes_when_run_again(
    tmp_path: Path, make_table: MakeTable, key_a: SecretKey, key_b: SecretKey
) -> None:
    """SQLite, killed with a batch written to the WAL but not committed (the real CLI is
    killed between batches in test_keys_store, on both databases)."""
    engine = sqlite_engine(tmp_path / "cmis.db")
    table = make_table(engine)
    ids = fill(engine, table, Vault([key_a]), 2000)
    url = engine.url.render_as_string(hide_password=False)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CMIS_SECRET_KEYS": f"{key_b.encoded()},{key_a.encoded()}"}
    command = [sys.executable, "-m", "tests.vault.rotate_worker", url, "200"]
    worker = subprocess.Popen([*command, "5"], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "hanging"  # batch 5 written, not committed
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    with engine.connect() as conn:
        assert key_usage(conn, table) == dict(sorted({key_a.id: 1200, key_b.id: 800}.items()))
    done = subprocess.run(
        [*command, "0"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rewritten", "1200", "remaining", "0"]
    with engine.connect() as conn:
        assert key_usage(conn, table) == {key_b.id: 2000}
    assert open_all(engine, table, Vault([key_b])) == {i: token_for(i) for i in ids}
