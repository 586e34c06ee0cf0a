"""Error injection: "the next N calls to this path fail like so" (or are slowed down).

A :class:`Fault` matches by method and path (``fnmatch`` pattern, so ``/v1/*/campaigns``
works) and fires ``times`` times. Its ``kind`` says what happens: ``status`` answers
``status`` with ``body``; ``server_error``, ``throttle`` and ``token_expired`` answer as the
platform would (through its :class:`~cmis_core.testing.sandbox.style.ApiStyle`); ``delay``
waits ``delay_ms`` and then lets the call through.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import attrs

KINDS = ("status", "server_error", "throttle", "token_expired", "delay")


def _kind(_: Any, __: Any, value: str) -> None:
    if value not in KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(KINDS)}")


@attrs.define(kw_only=True)
class Fault:
    """One planned failure."""

    path: str = "*"
    method: str | None = None
    kind: str = attrs.field(default="status", validator=_kind)
    status: int = 500
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay_ms: int = 0
    times: int = 1
    retry_after: float = 1.0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from the control API's JSON (unknown keys are an error)."""
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})


@attrs.define
class FaultPlan:
    """The faults still to fire, in the order they were planned."""

    faults: list[Fault] = attrs.field(factory=list)

    def add(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        self.faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first pending fault matching this call, consuming one of its firings."""
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()

    def pending(self) -> int:
        return sum(f.times for f in self.faults)
