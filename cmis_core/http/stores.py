"""Where the governor keeps what several workers must agree on: usage seen, pauses, buckets.

:class:`MemoryStore` is shared by the event loops of one process (the default);
:class:`RedisStore` (``CMIS_REDIS_URL``) by every process using that Redis, so workers on
one Meta app all see the app-wide usage its headers report, and platforms without usage
headers share one token bucket. The bucket is a Lua script run atomically in Redis, timed
by Redis's own clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from redis.asyncio import Redis

USAGE_TTL = 900.0
"""Seconds a usage reading is kept; older ones say nothing about the limit now."""


@attrs.frozen(kw_only=True)
class ScopeState:
    """The last usage fraction seen for a scope (and when, wall clock), and any pause."""

    used: float | None = None
    seen_at: float | None = None
    paused_until: float | None = None


class GovernorStore(Protocol):
    """The shared state behind :class:`~cmis_core.http.governor.Governor`."""

    async def read(self, keys: Sequence[str]) -> list[ScopeState]:
        """The state of each key, in order."""
        ...

    async def record_usage(self, key: str, used: float) -> None:
        """Remember ``used`` as the latest usage of ``key``."""
        ...

    async def pause(self, key: str, until: float) -> None:
        """No call on ``key`` before ``until`` (wall clock); a later pause wins."""
        ...

    async def take(self, key: str, *, rate: float, burst: int, max_wait: float) -> float:
        """Take a token from ``key``'s bucket: the wait before it may be used.

        The token is reserved only when that wait is at most ``max_wait``; a larger value
        means nothing was taken.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """State in this process's memory, shared by its event loops and threads.

    ``clock`` (wall-clock seconds) is injectable for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._usage: dict[str, tuple[float, float]] = {}
        self._pauses: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    async def read(self, keys: Sequence[str]) -> list[ScopeState]:
        now = self._clock()
        out = []
        with self._lock:
            for key in keys:
                used, seen_at = self._usage.get(key, (None, None))
                if seen_at is not None and now - seen_at > USAGE_TTL:
                    used = seen_at = None
                until = self._pauses.get(key)
                out.append(
                    ScopeState(
                        used=used,
                        seen_at=seen_at,
                        paused_until=until if until is not None and until > now else None,
                    )
                )
        return out

    async def record_usage(self, key: str, used: float) -> None:
        with self._lock:
            self._usage[key] = (used, self._clock())

    async def pause(self, key: str, until: float) -> None:
        with self._lock:
            self._pauses[key] = max(until, self._pauses.get(key, 0.0))

    async def take(self, key: str, *, rate: float, burst: int, max_wait: float) -> float:
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, now - stamp) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            if wait <= max_wait:
                self._buckets[key] = (tokens - 1, now)
        return wait

    async def aclose(self) -> None:
        return None


_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait <= max_wait then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + wait) * 1000) + 1000)
end
return tostring(wait)
"""

_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class RedisStore:
    """State in Redis (redis-py's asyncio client, the ``redis`` extra), under ``prefix``.

    Build one per event loop: its connections belong to the loop that opened them.
    """

    def __init__(self, url: str, *, prefix: str = "cmis:http:") -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from cmis_core.errors import ConfigurationError

            raise ConfigurationError(
                "CMIS_REDIS_URL is set but the redis client is not installed",
                hint="pip install 'cmis-core[redis]'",
            ) from exc
        self._redis: Redis = aioredis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._take: Any = self._redis.register_script(_TAKE)
        self._pause: Any = self._redis.register_script(_PAUSE)

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key}"

    async def read(self, keys: Sequence[str]) -> list[ScopeState]:
        if not keys:
            return []
        names = [self._key("usage", k) for k in keys] + [self._key("pause", k) for k in keys]
        values = await self._redis.mget(names)
        now = time.time()
        out = []
        for usage, pause in zip(values[: len(keys)], values[len(keys) :], strict=True):
            used = seen_at = until = None
            if usage:
                used_text, _, seen_text = str(usage).partition(":")
                used, seen_at = float(used_text), float(seen_text)
            if pause and float(pause) > now:
                until = float(pause)
            out.append(ScopeState(used=used, seen_at=seen_at, paused_until=until))
        return out

    async def record_usage(self, key: str, used: float) -> None:
        await self._redis.set(
            self._key("usage", key), f"{used!r}:{time.time()!r}", px=int(USAGE_TTL * 1000)
        )

    async def pause(self, key: str, until: float) -> None:
        ttl_ms = max(1, int((until - time.time()) * 1000) + 1000)
        await self._pause(keys=[self._key("pause", key)], args=[repr(until), ttl_ms])

    async def take(self, key: str, *, rate: float, burst: int, max_wait: float) -> float:
        result = await self._take(keys=[self._key("bucket", key)], args=[rate, burst, max_wait])
        return float(result)

    async def aclose(self) -> None:
        await self._redis.aclose()
