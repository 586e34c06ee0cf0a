"""Request logging for the service, in place of uvicorn's access log.

One structlog line per request (``http.access``): method, path, the query string with every
value masked except a few harmless keys, status and duration. The raw query string never
reaches a log line: OAuth callbacks carry codes and states, webhook handshakes carry verify
tokens and CRC tokens.
"""

from __future__ import annotations

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


def log_access(scope: Scope, status: int, started: float) -> None:
    """The ``http.access`` line of one request (``started``: its ``time.perf_counter()``)."""
    query = scope.get("query_string", b"")
    log.info(
        "http.access",
        method=scope.get("method"),
        path=scope.get("path"),
        query=mask_query(query) if query else None,
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )


class AccessLogMiddleware:
    """Pure ASGI middleware: logs each HTTP request once, after the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            log_access(scope, status["code"], started)
