"""Rate limits as a platform enforces them: one token bucket per key (app, user, account).

A call takes ``cost`` tokens from its key's bucket; the bucket refills at ``rate`` tokens
a second up to ``burst``. The bucket's fill level is what usage headers report, so usage
rises with load and falls when the caller slows down, as Meta's ``X-App-Usage`` does.
"""

from __future__ import annotations

import math

import attrs

from cmis_core.testing.sandbox.clock import Clock
from cmis_core.testing.sandbox.style import Usage


@attrs.define
class _Bucket:
    tokens: float
    updated: float


@attrs.define
class _Charges:
    units: float
    first: float
    last: float


@attrs.define
class RateLimiter:
    """Token buckets keyed by caller; ``enabled`` False lets every call through (usage 0)."""

    rate: float = 10.0
    burst: int = 50
    enabled: bool = True
    clock: Clock = attrs.field(factory=Clock)
    _buckets: dict[str, _Bucket] = attrs.field(factory=dict, init=False)
    _charges: dict[str, _Charges] = attrs.field(factory=dict, init=False)

    def _bucket(self, key: str) -> _Bucket:
        now = self.clock.now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
        return bucket

    def usage(self, key: str) -> Usage:
        """The bucket of ``key`` as it stands."""
        bucket = self._bucket(key)
        missing = self.burst - bucket.tokens
        return Usage(
            key=key,
            limit=self.burst,
            remaining=max(0, math.floor(bucket.tokens)),
            used=max(0.0, missing / self.burst),
            reset_after=missing / self.rate,
        )

    def take(self, key: str, cost: float = 1.0) -> tuple[Usage, float | None]:
        """Charge a call: its usage after the call, and the wait (seconds) if it is refused."""
        if not self.enabled:
            return Usage(
                key=key, limit=self.burst, remaining=self.burst, used=0.0, reset_after=0.0
            ), None
        bucket = self._bucket(key)
        if bucket.tokens < cost:
            return self.usage(key), (cost - bucket.tokens) / self.rate
        bucket.tokens -= cost
        charges = self._charges.get(key)
        if charges is None:
            self._charges[key] = _Charges(cost, bucket.updated, bucket.updated)
        else:
            charges.units += cost
            charges.last = bucket.updated
        return self.usage(key), None

    def budget(self) -> dict[str, dict[str, float]]:
        """Per key: units charged, and the units the limit allowed between its first and
        last charged call (``burst`` plus ``rate`` a second): how much of its budget a
        client used."""
        return {
            key: {
                "charged": round(c.units, 2),
                "allowed": round(self.burst + self.rate * (c.last - c.first), 2),
            }
            for key, c in self._charges.items()
        }

    def reset(self) -> None:
        self._buckets.clear()
        self._charges.clear()
