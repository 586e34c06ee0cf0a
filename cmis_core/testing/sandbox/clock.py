"""A clock a sandbox can move forward, so tests can expire tokens without sleeping."""

from __future__ import annotations

import time

import attrs


@attrs.define
class Clock:
    """Wall-clock seconds plus an offset that ``advance`` (or the control API) moves."""

    offset: float = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the sandbox sees them."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox's time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a sandbox clock only moves forward")
        self.offset += seconds
