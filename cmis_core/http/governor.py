"""The rate governor: slow down before a platform's limit, not after its error.

Each request runs in a scope ``(platform, app, account)``. Before it is sent the governor:

1. honours a pause on the scope (a platform's ``regain_after``, a throttle's Retry-After):
   sleeps it, or raises :class:`~cmis_core.errors.RetryLater` when it is longer than
   ``max_inline_wait``;
2. for a platform that reports usage (``Platform.usage``), spaces calls out once usage
   passes ``slow_down_at``: :func:`pacing_delay`, with a call interval learned per scope
   (:func:`adapt_interval`) so usage settles just under the limit whatever the platform's
   real rate (the nominal ``calls_per_second`` is only the starting point);
3. for a platform without usage headers, takes a token from the scope's bucket
   (``calls_per_second``, ``burst``).

Readings are keyed ``<platform>:<app>:<reading scope>``; a request on account ``A``
consults the readings of scope ``app`` and ``account:A`` (plugins name their scopes so).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from cmis_core.errors import RetryLater

if TYPE_CHECKING:
    from cmis_core.http.retry import Sleep
    from cmis_core.http.stores import GovernorStore, ScopeState
    from cmis_core.types import Platform, RateLimitPolicy, UsageReading

log = structlog.get_logger(__name__)


_TARGET = 0.8  # where between slow_down_at and 100 % the governor steers usage
_GAIN_UP = 0.3  # how fast the learned interval lengthens above the target (per reading)
_GAIN_DOWN = 0.05  # and shortens below it: quick to slow down, slow to speed up
_SPAN = 50.0  # the learned interval stays within [nominal / span, nominal * span]


def pacing_delay(
    used: float, policy: RateLimitPolicy, *, max_pace: float, interval: float | None = None
) -> float:
    """The spacing between two calls of a scope whose latest usage is ``used`` (0..1+).

    None below ``slow_down_at`` (``s``); above it, ``(used - s) / (1 - used)`` call
    intervals, growing without bound as usage nears 100 %. ``interval`` is the governor's
    learned interval (default: the nominal ``1 / calls_per_second``). At or past 100 %,
    and never more than, ``max_pace`` (then a call probes the limit).
    """
    s = policy.slow_down_at
    if used < s:
        return 0.0
    if used >= 1.0:
        return max_pace
    step = interval if interval is not None else 1.0 / policy.calls_per_second
    return min((used - s) / (1.0 - used) * step, max_pace)


def adapt_interval(
    interval: float, used: float, policy: RateLimitPolicy, *, rising: bool = False
) -> float:
    """The call interval after a reading of ``used``: longer above the target usage
    (``slow_down_at`` + 80 % of the rest), shorter below it, so usage settles at the target
    whatever the platform's real rate and kind of window (an integral controller). It does
    not shorten while usage is ``rising`` towards the target (no wind-up on the way)."""
    s = policy.slow_down_at
    if used < s or s >= 1.0:
        return interval
    if rising and used < s + _TARGET * (1.0 - s):
        return interval
    target = s + _TARGET * (1.0 - s)
    error = (used - target) / (1.0 - target) if used > target else (used - target) / (target - s)
    nominal = 1.0 / policy.calls_per_second
    gain = _GAIN_UP if error > 0 else _GAIN_DOWN
    adapted = interval * math.exp(gain * min(error, 1.0))
    return min(max(adapted, nominal / _SPAN), nominal * _SPAN)


def scope_keys(platform: str, app: str, account: str | None) -> list[str]:
    """The governor keys a request on ``account`` is subject to, widest first."""
    keys = [f"{platform}:{app}:app"]
    if account:
        keys.append(f"{platform}:{app}:account:{account}")
    return keys


class Governor:
    """Per-scope pacing over a shared :class:`~cmis_core.http.stores.GovernorStore`.

    One per event loop; the spacing state (when this process last started a call on each
    scope) is its own, the readings, pauses and buckets are the store's.
    """

    def __init__(
        self,
        store: GovernorStore,
        *,
        sleep: Sleep,
        max_inline_wait: float,
        max_pace: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._store = store
        self._sleep = sleep
        self._max_inline_wait = max_inline_wait
        self._max_pace = max_pace
        self._last_start: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._last_used: dict[str, float] = {}

    def _too_long(self, platform: str, wait: float, why: str) -> RetryLater:
        log.warning("http.reschedule", platform=platform, retry_after=round(wait, 3), why=why)
        return RetryLater(
            f"{platform}: {why} for {wait:.0f} s, longer than the {self._max_inline_wait:.0f} s "
            "waited inline; reschedule",
            retry_after=wait,
            platform=platform,
        )

    async def acquire(self, platform: Platform, app: str, account: str | None) -> float:
        """Wait until a call on this scope may start; returns the seconds waited.

        Raises :class:`~cmis_core.errors.RetryLater` instead of sleeping a wait longer than
        ``max_inline_wait``.
        """
        keys = scope_keys(platform.name, app, account)
        policy = platform.rate_limit
        waited = 0.0
        states = await self._store.read(keys)
        paused_until = max((s.paused_until or 0.0 for s in states), default=0.0)
        pause = paused_until - self._clock()
        if pause > 0:
            if pause > self._max_inline_wait:
                raise self._too_long(platform.name, pause, "the platform paused calls")
            log.info("http.paused", platform=platform.name, account=account, wait=round(pause, 3))
            await self._sleep(pause)
            waited += pause
        if platform.usage is None:
            wait = await self._store.take(
                keys[-1],
                rate=policy.calls_per_second,
                burst=policy.burst,
                max_wait=self._max_inline_wait,
            )
            if wait > self._max_inline_wait:
                raise self._too_long(platform.name, wait, "the rate bucket is empty")
        else:
            waited += await self._space(keys, states, policy)
            return waited
        if wait > 0:
            await self._sleep(wait)
            waited += wait
        return waited

    async def _space(
        self, keys: list[str], states: list[ScopeState], policy: RateLimitPolicy
    ) -> float:
        """Wait out the spacing the latest readings ask for, re-reading them after each
        sleep (just in time: a slot booked on old usage would waste or overrun budget)."""
        waited = 0.0
        while True:
            now = self._clock()
            start = now
            for key, state in zip(keys, states, strict=True):
                last = self._last_start.get(key)
                if state.used is not None and last is not None:
                    delay = pacing_delay(
                        state.used,
                        policy,
                        max_pace=self._max_pace,
                        interval=self._interval.get(key),
                    )
                    start = max(start, last + delay)
            if start <= now:
                for key in keys:
                    self._last_start[key] = now
                return waited
            await self._sleep(start - now)
            waited += start - now
            states = await self._store.read(keys)

    async def observe(self, platform: Platform, app: str, readings: list[UsageReading]) -> None:
        """Record the usage a response reported (and adapt the scope's call interval); a
        reading's ``regain_after`` pauses its scope."""
        now = self._clock()
        policy = platform.rate_limit
        for reading in readings:
            key = f"{platform.name}:{app}:{reading.scope}"
            interval = self._interval.get(key, 1.0 / policy.calls_per_second)
            previous = self._last_used.get(key)
            rising = previous is not None and reading.used > previous
            self._interval[key] = adapt_interval(interval, reading.used, policy, rising=rising)
            self._last_used[key] = reading.used
            await self._store.record_usage(key, reading.used)
            if reading.regain_after:
                await self._store.pause(key, now + reading.regain_after)

    async def throttled(
        self, platform: str, app: str, account: str | None, retry_after: float
    ) -> None:
        """A throttle answer: pause the request's narrowest scope for ``retry_after`` s."""
        key = scope_keys(platform, app, account)[-1]
        await self._store.pause(key, self._clock() + retry_after)
