"""The call log: what the sandbox was asked (never the query: it may hold tokens)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs


@attrs.define
class CallLog:
    """Counts of calls per ``METHOD path``, per status, throttles and faults fired."""

    calls: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    throttled: int = 0
    faults: int = 0
    token_errors: int = 0

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
        }

    def reset(self) -> None:
        self.calls.clear()
        self.statuses.clear()
        self.throttled = self.faults = self.token_errors = 0
