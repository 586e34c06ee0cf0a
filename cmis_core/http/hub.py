"""The HTTP machinery of one event loop: a connection pool, the governor, the counters.

Build one per event loop, never at import (a Celery task's ``asyncio.run`` gets its own)::

    async with HttpHub.from_settings(settings) as hub:
        ctx = hub.context(platform, settings.platform(platform.name))
        response = await ctx.http.get(url, params=params)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import httpx2
import structlog

from cmis_core.http.config import HttpConfig
from cmis_core.http.counters import Counters
from cmis_core.http.governor import Governor
from cmis_core.http.stores import GovernorStore, MemoryStore, RedisStore
from cmis_core.http.transport import GovernedTransport
from cmis_core.types import PlatformContext

if TYPE_CHECKING:
    from cmis_core.http.retry import Sleep
    from cmis_core.settings import PlatformSettings, Settings
    from cmis_core.types import Platform


@functools.cache
def process_store() -> MemoryStore:
    """The in-process governor state shared by every hub of this process."""
    return MemoryStore()


def _quiet_library_loggers() -> None:
    # httpx2 logs every request's full URL at INFO; Meta's URLs carry the access token.
    for name in ("httpx2", "httpcore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


class HttpHub:
    """One event loop's HTTP clients, one per (platform, app), over one connection pool.

    ``transport`` replaces the pool (tests pass ``httpx2.MockTransport``); ``store`` the
    governor state (default: Redis when ``config.redis_url`` is set, else this process's
    memory); ``sleep`` the sleep used for every wait and ``clock`` the wall clock the governor
    reads (tests pass a fake pair, so waits are asserted, not slept).
    Must be built inside a running event loop.
    """

    def __init__(
        self,
        config: HttpConfig | None = None,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        store: GovernorStore | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.config = config = config or HttpConfig()
        self._pool = transport or httpx2.AsyncHTTPTransport(
            limits=httpx2.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive,
                keepalive_expiry=config.keepalive_expiry,
            ),
            retries=0,
        )
        self._owns_store = store is None and config.redis_url is not None
        if store is None:
            store = (
                RedisStore(config.redis_url, prefix=config.redis_prefix)
                if config.redis_url
                else process_store()
            )
        self.store = store
        self._sleep = sleep
        self.governor = Governor(
            store,
            sleep=sleep,
            clock=clock,
            max_inline_wait=config.max_inline_wait,
            max_pace=config.max_pace,
        )
        self.counters = Counters()
        self._clients: dict[tuple[str, str], httpx2.AsyncClient] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        _quiet_library_loggers()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        store: GovernorStore | None = None,
    ) -> HttpHub:
        """A hub configured from ``CMIS_HTTP_*`` and ``CMIS_REDIS_URL``."""
        return cls(HttpConfig.from_settings(settings), transport=transport, store=store)

    def client(self, platform: Platform, *, app: str | None = None) -> httpx2.AsyncClient:
        """The client for ``platform`` calls made with app ``app`` (its client id).

        Cached: one client per (platform, app) on this hub, all over one connection pool.
        """
        key = (platform.name, app or "default")
        client = self._clients.get(key)
        if client is None:
            semaphore = self._semaphores.setdefault(
                platform.name, asyncio.Semaphore(platform.rate_limit.max_concurrency)
            )
            transport = GovernedTransport(
                platform=platform,
                app=key[1],
                pool=self._pool,
                governor=self.governor,
                semaphore=semaphore,
                counters=self.counters,
                config=self.config,
                sleep=self._sleep,
                loop=self._loop,
            )
            client = httpx2.AsyncClient(
                transport=transport,
                timeout=httpx2.Timeout(self.config.timeout, connect=self.config.connect_timeout),
                headers={"User-Agent": self.config.user_agent},
                trust_env=False,
            )
            self._clients[key] = client
        return client

    def context(
        self,
        platform: Platform,
        settings: PlatformSettings,
        *,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> PlatformContext:
        """The :class:`~cmis_core.types.PlatformContext` a plugin receives: this hub's client
        for the platform, keyed by the app id in ``CMIS_<P>_CLIENT_ID``."""
        return PlatformContext(
            platform=platform,
            settings=settings,
            http=self.client(platform, app=settings.get("CLIENT_ID")),
            log=log or structlog.get_logger(f"cmis.{platform.name}").bind(platform=platform.name),
        )

    async def aclose(self) -> None:
        """Close the clients, the connection pool and a Redis connection this hub opened."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await self._pool.aclose()
        if self._owns_store:
            await self.store.aclose()

    async def __aenter__(self) -> HttpHub:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
