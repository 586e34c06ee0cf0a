"""The HTTP client's tunables, read from ``CMIS_HTTP_*`` settings."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

from cmis_core.errors import ConfigurationError

if TYPE_CHECKING:
    from cmis_core.settings import Settings

_positive = attrs.validators.gt(0.0)
_at_least_one = attrs.validators.ge(1)


@attrs.frozen(kw_only=True)
class HttpConfig:
    """Timeouts, pool limits, retry caps and the governor's bounds.

    ``max_inline_wait`` is the longest wait (a Retry-After, a platform's pause, a bucket)
    slept inside a worker; a longer one raises :class:`~cmis_core.errors.RetryLater` so the
    run reschedules. ``max_pace`` bounds the spacing the governor puts between two calls of
    one scope when usage is at its limit.
    """

    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    timeout: float = attrs.field(default=60.0, validator=_positive)
    max_connections: int = attrs.field(default=100, validator=_at_least_one)
    max_keepalive: int = attrs.field(default=20, validator=_at_least_one)
    keepalive_expiry: float = attrs.field(default=30.0, validator=_positive)
    max_attempts: int = attrs.field(default=5, validator=_at_least_one)
    max_inline_wait: float = attrs.field(default=60.0, validator=attrs.validators.ge(0.0))
    backoff_max: float = attrs.field(default=30.0, validator=_positive)
    max_pace: float = attrs.field(default=2.0, validator=_positive)
    redis_url: str | None = attrs.field(default=None, repr=False)
    redis_prefix: str = "cmis:http:"
    user_agent: str = "cmis"

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpConfig:
        """``CMIS_HTTP_TIMEOUT``, ``CMIS_HTTP_MAX_ATTEMPTS``, ``CMIS_HTTP_MAX_INLINE_WAIT``
        and ``CMIS_REDIS_URL``; the rest keep their defaults."""
        env = settings.environ

        def number(name: str, default: float) -> float:
            raw = env.get(name, "")
            if raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {raw!r}")
            return value

        attempts = number("CMIS_HTTP_MAX_ATTEMPTS", 5)
        if attempts < 1 or attempts != int(attempts):
            raise ConfigurationError(
                f"CMIS_HTTP_MAX_ATTEMPTS must be a whole number >= 1, got {attempts:g}"
            )
        timeout = number("CMIS_HTTP_TIMEOUT", 60.0)
        if timeout == 0:
            raise ConfigurationError("CMIS_HTTP_TIMEOUT must be more than 0")
        return cls(
            timeout=timeout,
            max_attempts=int(attempts),
            max_inline_wait=number("CMIS_HTTP_MAX_INLINE_WAIT", 60.0),
            redis_url=settings.redis_url,
        )
