"""Request logging for the service, in place of uvicorn's access log.

One structlog line per request (``http.access``): method, path, the query string with every
value masked except a few harmless keys, status and duration. The raw query string never
reaches a log line: OAuth callbacks carry codes and states, webhook handshakes carry verify
tokens and CRC tokens.

A line costs ~150 µs of CPU at ``info`` (the redacting structlog pipeline and JSON), about
what the rest of a webhook delivery costs, so ``CMIS_ACCESS_LOG_EVERY=N`` keeps one in N
lines of answers below 400; refusals and errors are always written. When ``info`` is off
the line is skipped before structlog builds a logger for it.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog

from cmis_core.contract import ASGIApp, Receive, Scope, Send

log = structlog.get_logger(__name__)

SAFE_QUERY_KEYS = frozenset({"json", "failed", "limit", "page", "platform", "hub.mode"})


def mask_query(query: bytes | str) -> str:
    """The query string with every value but those of :data:`SAFE_QUERY_KEYS` masked."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    pairs = parse_qsl(text, keep_blank_values=True)
    masked = [(k, v if k in SAFE_QUERY_KEYS else "***") for k, v in pairs]
    return urlencode(masked, safe="*")


_INFO_ENABLED: dict[Any, bool] = {}


def _info_enabled() -> bool:
    """Whether structlog's configured level lets ``info`` through (cached per wrapper class)."""
    wrapper = structlog.get_config()["wrapper_class"]
    enabled = _INFO_ENABLED.get(wrapper)
    if enabled is None:
        check = getattr(wrapper, "is_enabled_for", None)
        try:
            enabled = True if check is None else bool(check(None, logging.INFO))
        except Exception:
            enabled = True
        _INFO_ENABLED[wrapper] = enabled
    return enabled


def log_access(scope: Scope, status: int, started: float) -> None:
    """The ``http.access`` line of one request (``started``: its ``time.perf_counter()``)."""
    if not _info_enabled():
        return
    query = scope.get("query_string", b"")
    log.info(
        "http.access",
        method=scope.get("method"),
        path=scope.get("path"),
        query=mask_query(query) if query else None,
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )


class AccessLog:
    """Logs requests: every answer of 400 and above, one in ``every`` of the others."""

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)
        self._skipped = 0

    def __call__(self, scope: Scope, status: int, started: float) -> None:
        if status < 400 and self.every > 1:
            self._skipped += 1
            if self._skipped < self.every:
                return
            self._skipped = 0
        log_access(scope, status, started)


class AccessLogMiddleware:
    """Pure ASGI middleware: logs each HTTP request once, after the response starts."""

    def __init__(self, app: ASGIApp, access_log: AccessLog | None = None) -> None:
        self.app = app
        self.access_log = access_log or AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, int] = {"code": 500}

        async def send_and_record(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.access_log(scope, status["code"], started)
