"""Column types that behave the same on SQLite and PostgreSQL.

- :class:`UtcDateTime`: timezone-aware datetimes in, UTC-aware datetimes out (SQLite keeps
  no offset, so values are stored as naive UTC and read back with ``tzinfo=UTC``).
- :class:`DecimalType`: ``NUMERIC`` on PostgreSQL; on SQLite a ``Decimal`` is bound as text
  and read back as a ``Decimal`` (never through ``float`` on the way in).
- :data:`JsonType`: ``JSONB`` on PostgreSQL (comparable, so unchanged rows can be skipped),
  ``JSON`` text on SQLite.
- :data:`IdType`: ``BIGINT`` on PostgreSQL, ``INTEGER`` on SQLite (the rowid alias).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

IdType = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp, always returned in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # written by hand on SQLite (CURRENT_TIMESTAMP)
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


class DecimalType(TypeDecorator[decimal.Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, bound as text on SQLite."""

    impl = Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(Numeric(20, 6, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("decimals must not be floats; pass a Decimal or a string")
        number = decimal.Decimal(value)
        if dialect.name == "sqlite":
            return format(number.normalize() if number != 0 else decimal.Decimal(0), "f")
        return number

    def process_result_value(self, value: Any, dialect: Dialect) -> decimal.Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):  # SQLite NUMERIC affinity stored it as REAL
            return decimal.Decimal(repr(value))
        return decimal.Decimal(value)
