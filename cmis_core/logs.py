"""Logging: structlog, configured once by the CLI or the service.

JSON lines when stderr is not a TTY (or ``CMIS_LOG_FORMAT=json``), readable lines on a TTY
(or ``CMIS_LOG_FORMAT=console``); the level from ``CMIS_LOG_LEVEL``. The standard library's
loggers (uvicorn, httpx2, sqlalchemy, ...) go through the same pipeline (handlers a
library installed on its own loggers are removed, see :data:`ROUTED_LOGGERS`; start
uvicorn with ``log_config=None`` so it does not install them again), so every line,
ours or a library's, passes :func:`redact_event`: secrets masked
(:mod:`cmis_core.redaction`), control characters escaped, tracebacks rendered as
redacted text.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from cmis_core.errors import ConfigurationError
from cmis_core.redaction import is_sensitive_key, neutralise, redact_text, redact_value

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("json", "console")
_MULTILINE_KEYS = frozenset({"exception", "stack"})
_UNTOUCHED_KEYS = frozenset({"timestamp", "level", "logger"})

# Libraries that may have given their loggers handlers of their own (uvicorn's default
# log config does): configure_logging sends them back through the root handler.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx2", "httpcore", "sqlalchemy")

_configured = False


def _neutralise_multiline(text: str) -> str:
    """A traceback keeps its lines, each indented, so no line of it can pass for an event."""
    lines = text.replace("\r", "\\r").split("\n")
    return "\n".join([neutralise(lines[0]), *("  " + neutralise(line) for line in lines[1:])])


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets and escape CR/LF in every key and value."""
    out: EventDict = {}
    for key, value in event_dict.items():
        name = neutralise(str(key))
        if key in _UNTOUCHED_KEYS:
            out[name] = value
        elif key in _MULTILINE_KEYS and isinstance(value, str):
            out[name] = _neutralise_multiline(redact_text(value))
        elif key != "event" and value is not None and is_sensitive_key(name):
            out[name] = "[redacted]"
        else:
            out[name] = _neutralise_deep(redact_value(value))
    return out


def _neutralise_deep(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, dict):
        return {neutralise(str(k)): _neutralise_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutralise_deep(v) for v in value]
    return value


class _StderrHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _choose_format(fmt: str | None, stream: TextIO | None) -> str:
    chosen = fmt or os.environ.get("CMIS_LOG_FORMAT") or ""
    if chosen:
        if chosen not in FORMATS:
            raise ConfigurationError(f"CMIS_LOG_FORMAT must be json or console, got {chosen!r}")
        return chosen
    target = stream if stream is not None else sys.stderr
    try:
        return "console" if target.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def _choose_level(level: str | None) -> int:
    name = (level or os.environ.get("CMIS_LOG_LEVEL") or "info").lower()
    if name not in LEVELS:
        raise ConfigurationError(f"CMIS_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {name!r}")
    return int(logging.getLevelNamesMapping()[name.upper()])


def configure_logging(
    *,
    force: bool = False,
    stream: TextIO | None = None,
    fmt: str | None = None,
    level: str | None = None,
) -> None:
    """Configure structlog and the standard library's logging, once per process.

    :param force: configure again even if already done (tests, a changed environment).
    :param stream: where lines go; default: ``sys.stderr`` as it is when each line is written.
    :param fmt: ``json`` or ``console``; default: ``CMIS_LOG_FORMAT``, else console on a TTY.
    :param level: a level name; default: ``CMIS_LOG_LEVEL``, else ``info``.
    """
    global _configured
    if _configured and not force:
        return
    chosen_format = _choose_format(fmt, stream)
    chosen_level = _choose_level(level)
    colors = chosen_format == "console" and "NO_COLOR" not in os.environ and _isatty(stream)
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
        if chosen_format == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(chosen_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("cmis")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "cmis"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen_level)
    for name in ROUTED_LOGGERS:
        library = logging.getLogger(name)
        for own in list(library.handlers):
            library.removeHandler(own)
        library.propagate = True
        library.disabled = False
        library.setLevel(logging.NOTSET)
    # SQLAlchemy's statement log carries row values (lead fields, states): warnings only.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    _configured = True


def _isatty(stream: TextIO | None) -> bool:
    try:
        return (stream if stream is not None else sys.stderr).isatty()
    except (AttributeError, ValueError):
        return False
