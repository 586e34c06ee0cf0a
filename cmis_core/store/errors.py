"""Turn a failure to reach the database into one clear ConfigurationError."""

from __future__ import annotations

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from cmis_core.errors import ConfigurationError
from cmis_core.store.engine import describe


def first_line(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's decoration."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def connect(engine: Engine, variable: str) -> Connection:
    """``engine.connect()``; an unreachable database is a ConfigurationError naming it."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise ConfigurationError(
            f"cannot connect to the database {describe(engine.url)} ({variable}): {first_line(exc)}"
        ) from None
