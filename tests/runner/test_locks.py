"""The per-integration lock: one holder; a dead holder's lock is free at once."""

from __future__ import annotations

import socket
import subprocess
import sys

from cmis_core.runner.locks import LeaseLock, holder_is_dead, integration_lock
from cmis_core.store import Store


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert done.returncode == 0
    return int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout)


def test_holder_is_dead_only_for_a_gone_process_of_this_host() -> None:
    host = socket.gethostname()[:100]
    assert holder_is_dead(f"{host}:{_dead_pid()}:abc")
    assert not holder_is_dead(f"{host}:1:abc")  # pid 1 runs
    assert not holder_is_dead(f"another-host:{_dead_pid()}:abc")  # cannot tell: trusted
    assert not holder_is_dead("garbage")


async def test_one_holder_at_a_time(store: Store) -> None:
    org = store.create_org("acme")
    first = integration_lock(store, org.id, 1, owner="a")
    second = integration_lock(store, org.id, 1, owner="b")
    other = integration_lock(store, org.id, 2, owner="b")
    assert await first.acquire()
    assert not await second.acquire()
    assert await other.acquire()  # another integration: its own lock
    await first.release()
    assert await second.acquire()
    await second.release()
    await other.release()


async def test_a_killed_holders_lease_is_taken_over_at_once(sqlite_database: object) -> None:
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    settings = Settings.from_env(sqlite_database.environ())  # type: ignore[attr-defined]
    with open_store(settings) as store:
        host = socket.gethostname()[:100]
        alive = LeaseLock(store, "sync:1:1", f"{host}:1:abc", seconds=600)
        assert await alive.acquire()
        assert not await LeaseLock(store, "sync:1:1", "me:2:x").acquire()  # held, holder runs
        await alive.release()

        dead = LeaseLock(store, "sync:1:1", f"{host}:{_dead_pid()}:abc", seconds=600)
        assert await dead.acquire()
        dead._beat.cancel()  # type: ignore[union-attr]  # "killed": never releases
        taker = LeaseLock(store, "sync:1:1", f"{host}:999999:new")
        assert await taker.acquire()  # at once, not in 600 s
        await taker.release()
