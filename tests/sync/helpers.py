"""Shared helpers of the sync tests: a served sandbox, tokens from it, an integration row."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import structlog
from sqlalchemy import func, insert, select

from cmis_core.contract import SandboxOptions
from cmis_core.factory import Registry, load_plugins
from cmis_core.http import HttpConfig, HttpHub, MemoryStore
from cmis_core.settings import Settings
from cmis_core.store import Store, tables
from cmis_core.sync.engine import sync_integration
from cmis_core.sync.result import SyncResult
from cmis_core.testing.serve import serve
from cmis_core.types import PlatformContext, TokenSet

REDIRECT = "http://127.0.0.1:8000/oauth/callback"


def registry_for(*platforms: str) -> Registry:
    """A registry holding just these installed plugins (import errors fail loudly)."""
    import importlib.metadata as md

    eps = [ep for ep in md.entry_points(group="cmis") if ep.name in platforms]
    return load_plugins(Settings.from_env({"CMIS_PLUGINS_STRICT": "1"}), entry_points=eps)


@attrs.frozen
class Served:
    platform: str
    base_url: str
    env: dict[str, str]

    async def control(self, method: str, path: str, json: Any = None) -> Any:
        async with httpx2.AsyncClient(timeout=10) as http:
            answer = await http.request(method, f"{self.base_url}/_sandbox{path}", json=json)
            answer.raise_for_status()
            return answer.json()

    async def expected(self) -> dict[str, int]:
        return {k: int(v) for k, v in (await self.control("GET", "/expected"))["streams"].items()}


@contextlib.contextmanager
def served(
    registry: Registry,
    platform: str,
    *,
    size: str = "small",
    rate_limit: bool = False,
    **extra: Any,
) -> Iterator[Served]:
    sandbox = registry.sandbox(platform)
    app = sandbox.app(SandboxOptions(seed=7, size=size, rate_limit=rate_limit, extra=extra))
    with serve(app) as base:
        yield Served(platform=platform, base_url=base, env=sandbox.env(base))


async def connect(registry: Registry, platform: str, env: Mapping[str, str]) -> TokenSet:
    """The connect flow against the sandbox (begin, consent, complete)."""
    settings = Settings.from_env(dict(env)).platform(platform)
    provider = registry.auth_provider(platform)
    async with httpx2.AsyncClient(timeout=10) as http:
        ctx = PlatformContext(
            platform=registry.platform(platform),
            settings=settings,
            http=http,
            log=structlog.get_logger("test"),
        )
        request = await provider.begin(
            ctx,
            redirect_uri=REDIRECT,
            state=secrets.token_urlsafe(8),
            scopes=registry.platform(platform).scopes,
        )
        answer = await http.get(request.url)
        params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        return await provider.complete(ctx, params=params, request=request, redirect_uri=REDIRECT)


def add_integration(store: Store, org_id: int, platform: str) -> int:
    with store.org(org_id) as conn:
        return int(
            conn.execute(
                insert(tables.integrations)
                .values(org_id=org_id, platform=platform, status="active")
                .returning(tables.integrations.c.id)
            ).scalar_one()
        )


def counts(store: Store, org_id: int) -> dict[str, int]:
    """Rows per entity table of ``org_id``."""
    out: dict[str, int] = {}
    with store.org(org_id, write=False) as conn:
        for table in (
            tables.ad_accounts,
            tables.campaigns,
            tables.ad_groups,
            tables.ads,
            tables.creatives,
            tables.daily_metrics,
            tables.leads,
        ):
            out[table.name] = int(
                conn.execute(
                    select(func.count()).select_from(table).where(table.c.org_id == org_id)
                ).scalar_one()
            )
    return out


def metric_counts(store: Store, org_id: int) -> dict[str, int]:
    t = tables.daily_metrics
    with store.org(org_id, write=False) as conn:
        rows = conn.execute(
            select(t.c.level, func.count()).where(t.c.org_id == org_id).group_by(t.c.level)
        ).all()
    return {str(level): int(n) for level, n in rows}


class FakeTime:
    """A wall clock that advances only when something sleeps; the sleeps are recorded."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


async def run_sync(
    store: Store,
    registry: Registry,
    settings: Settings,
    *,
    org_id: int,
    platform: str,
    tokens: TokenSet,
    **kwargs: Any,
) -> SyncResult:
    async def provide() -> TokenSet:
        return tokens

    clock = kwargs.pop("clock", None)
    extra: dict[str, Any] = {}
    if clock is not None:  # a FakeTime: the hub's and the engine's waits are recorded, not slept
        extra = {"sleep": clock.sleep, "clock": clock.time}
        kwargs["sleep"] = clock.sleep
    async with HttpHub(HttpConfig.from_settings(settings), store=MemoryStore(), **extra) as hub:
        return await sync_integration(
            store,
            registry,
            settings,
            org_id=org_id,
            platform=platform,
            hub=hub,
            tokens_provider=provide,
            **kwargs,
        )
