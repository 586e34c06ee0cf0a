"""The call log: what the sandbox was asked (never the query: it may hold tokens)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs


@attrs.define
class CallLog:
    """Counts of calls per ``METHOD path``, per status, throttles and faults fired.

    ``in_flight`` is the number of calls being answered now and ``max_in_flight`` the most
    there were at once: how concurrently a client calls.
    """

    calls: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    throttled: int = 0
    faults: int = 0
    token_errors: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def started(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1

    def record(self, method: str, path: str) -> None:
        self.calls[f"{method} {path}"] += 1

    def count(self, path: str, method: str = "GET") -> int:
        return self.calls[f"{method} {path}"]

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "calls": dict(self.calls),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "throttled": self.throttled,
            "faults": self.faults,
            "token_errors": self.token_errors,
            "max_in_flight": self.max_in_flight,
        }

    def reset(self) -> None:
        self.calls.clear()
        self.statuses.clear()
        self.throttled = self.faults = self.token_errors = 0
        self.max_in_flight = self.in_flight
