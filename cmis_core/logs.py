"""Logging: structlog, configured once by the CLI or the service.

JSON lines when stderr is not a TTY (or ``CMIS_LOG_FORMAT=json``), readable lines on a TTY.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure_logging(*, force: bool = False) -> None:
    """Configure structlog and the standard library's logging once per process."""
    global _configured
    if _configured and not force:
        return
    fmt = os.environ.get("CMIS_LOG_FORMAT") or ("console" if sys.stderr.isatty() else "json")
    level_name = (os.environ.get("CMIS_LOG_LEVEL") or "info").upper()
    level = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    _configured = True
