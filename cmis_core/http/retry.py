"""What is retried and how long to wait: Retry-After, back-off with jitter, the default map.

The loop itself is tenacity's (in the transport); this module supplies its policy.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Awaitable, Callable

import httpx2
import tenacity

from cmis_core.errors import (
    Fatal,
    PlatformError,
    RateLimited,
    RetryLater,
    TokenRejected,
    Transient,
)

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep; injected in tests so waits are asserted, not slept."""


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    ``None`` when absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def default_classify(response: httpx2.Response) -> PlatformError | None:
    """The map used for a platform without its own ``classify``: by HTTP status only."""
    status = response.status_code
    if status < 400:
        return None
    message = f"HTTP {status}"
    if status == 401:
        return TokenRejected(message, status=status)
    if status == 429:
        return RateLimited(message, status=status)
    if status in (408, 425) or status >= 500:
        return Transient(message, status=status)
    return Fatal(message, status=status)


def hinted_wait(error: BaseException) -> float | None:
    """The wait the platform asked for with this error, when it did."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def is_retryable(error: BaseException) -> bool:
    """Throttles and transient failures are retried; a too-long wait and the rest are not."""
    return isinstance(error, Transient | RateLimited) and not isinstance(error, RetryLater)


class wait_platform_or_backoff(tenacity.wait.wait_base):
    """Wait exactly what the platform asked for (Retry-After, ``retry_after``), else back off
    exponentially with jitter: about 1 s, 2 s, 4 s, ... up to ``maximum``."""

    def __init__(self, maximum: float) -> None:
        self._backoff = tenacity.wait_exponential_jitter(max=maximum, jitter=1)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        hinted = hinted_wait(error) if error is not None else None
        return hinted if hinted is not None else float(self._backoff(retry_state))
