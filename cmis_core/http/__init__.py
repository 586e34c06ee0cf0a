"""The one HTTP client of cmis, for every platform.

Build an :class:`HttpHub` per event loop; hand plugins ``hub.context(platform, settings)``
(its ``http`` is a plain ``httpx2.AsyncClient``). Every response goes through the platform's
``classify`` (typed errors) and ``usage`` (the rate governor); throttles and transient
failures are retried with tenacity, waiting what the platform says; a wait too long to sleep
in a worker raises :class:`~cmis_core.errors.RetryLater` for the run to reschedule.
"""

from cmis_core.http.config import HttpConfig
from cmis_core.http.counters import CallCounts, Counters
from cmis_core.http.governor import Governor, pacing_delay
from cmis_core.http.hub import HttpHub, process_store
from cmis_core.http.retry import default_classify, parse_retry_after
from cmis_core.http.scope import (
    ACCOUNT,
    STREAM,
    HttpScope,
    TokenRefresher,
    current_scope,
    http_scope,
    replace_token,
)
from cmis_core.http.stores import GovernorStore, MemoryStore, RedisStore, ScopeState

__all__ = [
    "ACCOUNT",
    "STREAM",
    "CallCounts",
    "Counters",
    "Governor",
    "GovernorStore",
    "HttpConfig",
    "HttpHub",
    "HttpScope",
    "MemoryStore",
    "RedisStore",
    "ScopeState",
    "TokenRefresher",
    "current_scope",
    "default_classify",
    "http_scope",
    "pacing_delay",
    "parse_retry_after",
    "process_store",
    "replace_token",
]
