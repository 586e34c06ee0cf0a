""":class:`SyncSection`: a full read returns exactly what the sandbox holds;
:class:`EngineSyncSection`: the core's sync engine stores exactly that, incrementally and
across a run cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from cmis_core.factory import Registry
from cmis_core.settings import Settings
from cmis_core.testing.conformance.harness import KitHarness, SyncResult
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.records import natural_key, problems
from cmis_core.testing.serve import RunningSandbox
from cmis_core.types import EntityKind, TokenSet


class SyncSection(KitHarness):
    """A full read from the accounts down returns exactly what the sandbox holds."""

    def test_sync_streams_match_the_ground_truth(self, cmis_synced: SyncResult) -> None:
        assert set(cmis_synced.expected) == set(cmis_synced.records), (
            "the sandbox's /_sandbox/expected must name every stream, and only those"
        )

    def test_sync_every_record_arrives_once(
        self, cmis_registry: Registry, cmis_synced: SyncResult
    ) -> None:
        streams = cmis_registry.streams_of(self.platform)
        for name, records in cmis_synced.records.items():
            keys = Counter(natural_key(EntityKind(streams[name].entity), r) for r in records)
            twice = [k for k, n in keys.items() if n > 1]
            assert not twice, (
                f"{name}: {len(twice)} records arrived more than once, e.g. {twice[0]}"
            )
            held = cmis_synced.expected.get(name)
            assert len(keys) == held, f"{name}: read {len(keys)} records, the sandbox holds {held}"

    def test_sync_records_are_valid(self, cmis_registry: Registry, cmis_synced: SyncResult) -> None:
        streams = cmis_registry.streams_of(self.platform)
        for name, records in cmis_synced.records.items():
            entity = EntityKind(streams[name].entity)
            for record in records:
                found = problems(entity, record)
                assert not found, f"{name} record {record.get('external_id')}: {'; '.join(found)}"

    def test_sync_children_belong_to_read_accounts(
        self, cmis_registry: Registry, cmis_synced: SyncResult
    ) -> None:
        streams = cmis_registry.streams_of(self.platform)
        accounts = {
            r["external_id"]
            for name, rs in cmis_synced.records.items()
            if streams[name].entity == EntityKind.AD_ACCOUNT
            for r in rs
        }
        for name, records in cmis_synced.records.items():
            if streams[name].entity == EntityKind.AD_ACCOUNT:
                continue
            strays = {r.get("account_id") for r in records} - accounts
            assert not strays, (
                f"{name}: records of accounts never read: {sorted(map(str, strays))[:3]}"
            )


class _FakeTime:
    """A clock that advances only when the client sleeps (waits recorded, not slept)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class EngineSyncSection(KitHarness):
    """The core's sync engine over the sandbox: full, then incremental, then a run cut
    short and resumed; every table ends with exactly the records the sandbox holds."""

    @pytest.fixture
    def cmis_engine_store(self, tmp_path: Any) -> Iterator[Any]:
        from cmis_core.store import open_store

        settings = Settings.from_env({"CMIS_HOME": str(tmp_path)})
        with open_store(settings) as store:
            yield store

    def _engine_org(self, store: Any, slug: str) -> int:
        from sqlalchemy import insert

        from cmis_core.store import tables

        org = store.create_org(slug)
        with store.org(org.id) as conn:
            conn.execute(
                insert(tables.integrations).values(
                    org_id=org.id, platform=self.platform, status="active"
                )
            )
        return int(org.id)

    async def _engine_sync(
        self,
        store: Any,
        registry: Registry,
        sandbox: RunningSandbox,
        org_id: int,
        tokens: TokenSet,
        **kwargs: Any,
    ) -> Any:
        from cmis_core.http import HttpConfig, HttpHub, MemoryStore
        from cmis_core.sync.engine import sync_integration

        settings = Settings.from_env({**sandbox.env, "CMIS_HOME": "/nonexistent"})
        clock = _FakeTime()

        async def provide() -> TokenSet:
            return tokens

        async with HttpHub(
            HttpConfig.from_settings(settings),
            store=MemoryStore(),
            sleep=clock.sleep,
            clock=clock.time,
        ) as hub:
            return await sync_integration(
                store,
                registry,
                settings,
                org_id=org_id,
                platform=self.platform,
                hub=hub,
                tokens_provider=provide,
                sleep=clock.sleep,
                **kwargs,
            )

    def _engine_expected(self, registry: Registry, expected: Mapping[str, int]) -> Counter[str]:
        from cmis_core.sync.writer import TABLES

        streams = registry.streams_of(self.platform)
        by_table: Counter[str] = Counter()
        for name, count in expected.items():
            by_table[TABLES[EntityKind(streams[name].entity)].name] += count
        return by_table

    def _engine_stored(self, store: Any, org_id: int) -> Counter[str]:
        from sqlalchemy import func, select

        from cmis_core.sync.writer import TABLES

        found: Counter[str] = Counter()
        with store.org(org_id, write=False) as conn:
            for table in TABLES.values():
                found[table.name] = int(
                    conn.execute(
                        select(func.count()).select_from(table).where(table.c.org_id == org_id)
                    ).scalar_one()
                )
        return +found

    @pytest.mark.asyncio
    async def test_sync_engine_full_then_incremental(
        self,
        cmis_registry: Registry,
        cmis_sandbox: RunningSandbox,
        cmis_control: SandboxControl,
        cmis_tokens: TokenSet,
        cmis_engine_store: Any,
    ) -> None:
        store = cmis_engine_store
        org_id = self._engine_org(store, "kit-full")
        want = self._engine_expected(cmis_registry, await cmis_control.expected())
        first = await self._engine_sync(store, cmis_registry, cmis_sandbox, org_id, cmis_tokens)
        assert first.status == "succeeded", first.to_json()
        assert self._engine_stored(store, org_id) == want
        second = await self._engine_sync(store, cmis_registry, cmis_sandbox, org_id, cmis_tokens)
        assert second.status == "succeeded", second.to_json()
        assert self._engine_stored(store, org_id) == want, "the second sync duplicated rows"

    @pytest.mark.asyncio
    async def test_sync_engine_resumes_a_run_cut_short(
        self,
        cmis_registry: Registry,
        cmis_sandbox: RunningSandbox,
        cmis_control: SandboxControl,
        cmis_tokens: TokenSet,
        cmis_engine_store: Any,
    ) -> None:
        store = cmis_engine_store
        org_id = self._engine_org(store, "kit-resume")
        want = self._engine_expected(cmis_registry, await cmis_control.expected())
        committed = asyncio.Event()
        first = asyncio.create_task(
            self._engine_sync(
                store,
                cmis_registry,
                cmis_sandbox,
                org_id,
                cmis_tokens,
                progress=lambda stream, n: committed.set(),
            )
        )
        await asyncio.wait(
            [first, asyncio.create_task(committed.wait())],
            timeout=60,
            return_when=asyncio.FIRST_COMPLETED,
        )
        first.cancel()  # as a kill would: the run row stays open
        with contextlib.suppress(asyncio.CancelledError):
            await first
        again = await self._engine_sync(store, cmis_registry, cmis_sandbox, org_id, cmis_tokens)
        assert again.status == "succeeded", again.to_json()
        assert self._engine_stored(store, org_id) == want
