"""Idempotent bulk upsert on a natural key, through SQLAlchemy Core and the raw driver.

PostgreSQL: the rows are COPYed into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE <a column changed>`` writes
them; ``xmax = 0`` tells inserted rows from updated ones. SQLite: two ``executemany`` passes
in the caller's ``BEGIN IMMEDIATE`` transaction, ``INSERT ... ON CONFLICT DO NOTHING`` then
``UPDATE ... WHERE <a column changed>``. On both, a row whose columns are all equal to the
stored ones is not written (its ``updated_at`` stays), so re-reading a look-back window
costs reads, not writes.

Tenant tables: ``org_id`` comes from the org transaction; a row naming another
organisation is refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Date,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from cmis_core.errors import UsageError
from cmis_core.store.columns import UtcDateTime
from cmis_core.store.records import UpsertResult

DEFAULT_PAGE_SIZE = 5000
BOOKKEEPING = ("created_at", "updated_at")


def _unique_keys(table: Table) -> list[frozenset[str]]:
    return [
        frozenset(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint)
    ]


def _python_type(table: Table, column: str) -> type:
    try:
        return table.c[column].type.python_type
    except NotImplementedError:
        return object


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


class _Plan:
    """The columns of one upsert call, checked against the table."""

    def __init__(
        self, conn: Connection, table: Table, first: Mapping[str, Any], key: Sequence[str]
    ):
        self.table = table
        self.tenant = "org_id" in table.c
        key = tuple(key)
        if self.tenant and "org_id" not in key:
            key = ("org_id", *key)
        if frozenset(key) not in _unique_keys(table):
            raise UsageError(f"{table.name}: {', '.join(key)} is not a unique key of the table")
        given = [c for c in first if c != "org_id"]
        unknown = [c for c in given if c not in table.c]
        if unknown:
            raise UsageError(f"{table.name} has no column {unknown[0]!r}")
        managed = [c for c in given if c in BOOKKEEPING]
        if managed:
            raise UsageError(f"{table.name}.{managed[0]} is set by the upsert, not by rows")
        columns = (["org_id"] if self.tenant else []) + given
        missing = [k for k in key if k not in columns]
        if missing:
            raise UsageError(f"{table.name}: rows lack key column {missing[0]!r}")
        self.key = key
        self.columns = columns
        self.given = frozenset(first)
        self.compare = [c for c in columns if c not in key]
        self.stamps = [c for c in BOOKKEEPING if c in table.c]
        self.org_id: int | None = None
        if self.tenant:
            from cmis_core.store.store import current_org_id

            self.org_id = current_org_id(conn)

        # columns whose values may be enum members (str columns): converted to their value
        self._texts = [
            i
            for i, c in enumerate(columns)
            if c != "org_id" and _python_type(table, c) in (str, object)
        ]
        self._get = operator.itemgetter(*given) if given else (lambda row: ())
        self._wrap = len(given) == 1

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        """The row as a list in column order, org_id first for tenant tables."""
        if row.keys() != self.given:
            raise UsageError(f"{self.table.name}: every row must have the same columns")
        got = self._get(row)
        values = [got] if self._wrap else list(got)
        if self.tenant:
            named = row.get("org_id", self.org_id)
            if named != self.org_id:
                raise UsageError(
                    f"{self.table.name}: a row names organisation {named!r} "
                    f"in a transaction of organisation {self.org_id}"
                )
            values.insert(0, self.org_id)
        for i in self._texts:
            value = values[i]
            if value is not None and type(value) is not str:
                values[i] = _plain(value)
        return values


def upsert(
    conn: Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    key: Sequence[str],
) -> UpsertResult:
    """Insert new rows, update changed ones, skip unchanged ones; in ``conn``'s transaction.

    ``key`` is the natural key (``org_id`` is added for tenant tables); the last row wins
    when a key repeats. Every row must have the same columns; ``created_at`` and
    ``updated_at`` are set here. Returns the counts inserted / updated / unchanged.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return UpsertResult()
    plan = _Plan(conn, table, first, key)
    positions = [plan.columns.index(k) for k in plan.key]
    unique: dict[tuple[Any, ...], list[Any]] = {}
    for row in (first, *iterator):
        values = plan.values(row)
        unique[tuple(values[i] for i in positions)] = values
    batch = list(unique.values())
    now = dt.datetime.now(dt.UTC)
    if conn.dialect.name == "postgresql":
        return _upsert_postgres(conn, plan, batch, now)
    return _upsert_sqlite(conn, plan, batch, now)


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


# psycopg binary COPY type per SQLAlchemy type (the most derived class wins)
_COPY_TYPES: tuple[tuple[type, str], ...] = (
    (BigInteger, "int8"),
    (Integer, "int4"),
    (Boolean, "bool"),
    (Date, "date"),
    (Numeric, "numeric"),
    (JSON, "jsonb"),
    (LargeBinary, "bytea"),
    (String, "text"),
)


def _copy_type(table: Table, column: str) -> str:
    column_type = table.c[column].type
    if isinstance(column_type, TypeDecorator):
        if isinstance(column_type, UtcDateTime):
            return "timestamptz"
        column_type = column_type.impl_instance
    for sa_type, name in _COPY_TYPES:
        if isinstance(column_type, sa_type):
            return name
    raise UsageError(f"{table.name}.{column}: no bulk COPY type for {column_type!r}")


def _upsert_postgres(
    conn: Connection, plan: _Plan, batch: list[list[Any]], now: dt.datetime
) -> UpsertResult:
    from psycopg.types.json import Jsonb

    def q(name: str) -> str:
        return _q(conn, name)

    table = q(plan.table.name)
    cols = ", ".join(q(c) for c in plan.columns)
    types = [_copy_type(plan.table, c) for c in plan.columns]
    json_at = [i for i, name in enumerate(types) if name == "jsonb"]
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE _cmis_upsert ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {cols} FROM {table} WITH NO DATA"
        )
        with cur.copy(f"COPY _cmis_upsert ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            if json_at:
                for values in batch:
                    for i in json_at:
                        if values[i] is not None:
                            values[i] = Jsonb(values[i])
                    copy.write_row(values)
            else:
                for values in batch:
                    copy.write_row(values)
        key = ", ".join(q(k) for k in plan.key)
        if plan.compare:
            sets = [f"{q(c)} = EXCLUDED.{q(c)}" for c in plan.compare]
            if "updated_at" in plan.stamps:
                sets.append('"updated_at" = EXCLUDED."updated_at"')
            mine = ", ".join(f"{table}.{q(c)}" for c in plan.compare)
            theirs = ", ".join(f"EXCLUDED.{q(c)}" for c in plan.compare)
            conflict = (
                f"DO UPDATE SET {', '.join(sets)} WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})"
            )
        else:
            conflict = "DO NOTHING"
        stamps = "".join(f", {q(s)}" for s in plan.stamps)
        stamp_values = ", %(now)s" * len(plan.stamps)
        cur.execute(
            f"WITH w AS (INSERT INTO {table} ({cols}{stamps}) "  # noqa: S608
            f"SELECT {cols}{stamp_values} FROM _cmis_upsert "
            f"ON CONFLICT ({key}) {conflict} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w",
            {"now": now},
        )
        counts = cur.fetchone()
        cur.execute("DROP TABLE _cmis_upsert")
    assert counts is not None
    inserted, updated = int(counts[0]), int(counts[1])
    return UpsertResult(
        inserted=inserted, updated=updated, unchanged=len(batch) - inserted - updated
    )


def _upsert_sqlite(
    conn: Connection, plan: _Plan, batch: list[list[Any]], now: dt.datetime
) -> UpsertResult:
    dialect = conn.dialect
    processors: list[Callable[[Any], Any] | None] = [
        plan.table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in plan.columns
    ]
    stamp_type = plan.table.c[plan.stamps[0]].type if plan.stamps else None
    stamp = (
        stamp_type.dialect_impl(dialect).bind_processor(dialect)(now)  # type: ignore[misc]
        if stamp_type is not None
        else None
    )
    if any(processors):
        for values in batch:
            for i, process in enumerate(processors):
                if process is not None and values[i] is not None:
                    values[i] = process(values[i])

    def q(name: str) -> str:
        return _q(conn, name)

    table = q(plan.table.name)
    names = [*plan.columns, *plan.stamps]
    insert = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in names)}) "
        f"ON CONFLICT ({', '.join(q(k) for k in plan.key)}) DO NOTHING"
    )
    extra = [stamp] * len(plan.stamps)
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        cur.executemany(insert, [[*values, *extra] for values in batch])
        inserted = max(cur.rowcount, 0)
        updated = 0
        if plan.compare:
            sets = [f"{q(c)} = ?" for c in plan.compare]
            if "updated_at" in plan.stamps:
                sets.append('"updated_at" = ?')
            update = (
                f"UPDATE {table} SET {', '.join(sets)} "  # noqa: S608
                f"WHERE {' AND '.join(f'{q(k)} = ?' for k in plan.key)} "
                f"AND ({' OR '.join(f'{q(c)} IS NOT ?' for c in plan.compare)})"
            )
            key_at = [plan.columns.index(k) for k in plan.key]
            compare_at = [plan.columns.index(c) for c in plan.compare]
            tail = [stamp] if "updated_at" in plan.stamps else []
            cur.executemany(
                update,
                [
                    [
                        *(values[i] for i in compare_at),
                        *tail,
                        *(values[i] for i in key_at),
                        *(values[i] for i in compare_at),
                    ]
                    for values in batch
                ],
            )
            updated = max(cur.rowcount, 0)
    finally:
        cur.close()
    return UpsertResult(
        inserted=inserted, updated=updated, unchanged=len(batch) - inserted - updated
    )
