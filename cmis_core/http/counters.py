"""Per-platform (and per-account) call counters, read by the sync engine for its summary."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import attrs


@attrs.define
class CallCounts:
    """What one platform (or one account of it) cost: calls sent, retries, throttles."""

    calls: int = 0  # requests sent to the platform, every attempt included
    retries: int = 0  # attempts repeated after an error or a throttle
    throttled: int = 0  # responses the platform's classify called RateLimited
    errors: int = 0  # other error responses and transport failures
    bytes_received: int = 0
    waited: float = 0.0  # seconds slept: governor spacing, pauses and retry back-off

    def add(self, other: CallCounts) -> None:
        """Add ``other``'s figures to these."""
        self.calls += other.calls
        self.retries += other.retries
        self.throttled += other.throttled
        self.errors += other.errors
        self.bytes_received += other.bytes_received
        self.waited += other.waited

    def to_json(self) -> dict[str, int | float]:
        return attrs.asdict(self)


class Counters:
    """Call counts keyed by platform and account (``None`` when a call names no account).

    Thread-safe; one per :class:`~cmis_core.http.HttpHub`, and optionally one per run
    (passed with :func:`~cmis_core.http.http_scope`) to count just that run's calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str | None], CallCounts] = {}

    def record(
        self,
        platform: str,
        account: str | None,
        *,
        calls: int = 0,
        retries: int = 0,
        throttled: int = 0,
        errors: int = 0,
        bytes_received: int = 0,
        waited: float = 0.0,
    ) -> None:
        """Add to the counts of ``platform`` / ``account``."""
        delta = CallCounts(
            calls=calls,
            retries=retries,
            throttled=throttled,
            errors=errors,
            bytes_received=bytes_received,
            waited=waited,
        )
        with self._lock:
            self._counts.setdefault((platform, account), CallCounts()).add(delta)

    def _sum(self, keys: Iterable[tuple[str, str | None]]) -> CallCounts:
        total = CallCounts()
        for key in keys:
            total.add(self._counts[key])
        return total

    def platform(self, name: str) -> CallCounts:
        """The totals of one platform, all accounts together (a copy)."""
        with self._lock:
            return self._sum(k for k in self._counts if k[0] == name)

    def account(self, platform: str, account: str | None) -> CallCounts:
        """The totals of one account of a platform (a copy)."""
        with self._lock:
            return self._sum(k for k in self._counts if k == (platform, account))

    def platforms(self) -> dict[str, CallCounts]:
        """Totals by platform (copies)."""
        with self._lock:
            names = sorted({k[0] for k in self._counts})
            return {n: self._sum(k for k in self._counts if k[0] == n) for n in names}

    def to_json(self) -> dict[str, dict[str, int | float]]:
        """``{platform: {calls, retries, throttled, errors, bytes_received, waited}}``."""
        return {name: counts.to_json() for name, counts in self.platforms().items()}
