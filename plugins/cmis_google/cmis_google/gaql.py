"""GAQL, the Google Ads Query Language, as values: queries are built, never concatenated.

A stream declares its resource and fields; its ``WHERE`` conditions are
:class:`Condition` values whose every part is validated (field paths, operators, and the
values: whole numbers, dates, enum names, plain strings), so nothing read from a setting or
a platform answer can change a query's shape::

    Query(
        resource="campaign",
        fields=("campaign.id", "segments.date", "metrics.cost_micros"),
        where=(Condition("segments.date", "BETWEEN", (since, until)),),
    ).render()

:func:`parse` reads the subset of GAQL cmis writes back into a :class:`Query` (the sandbox
uses it to answer; tests use it to check a rendered query round-trips).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import attrs

from cmis_core.errors import UsageError

FIELD = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
RESOURCE = re.compile(r"^[a-z][a-z0-9_]*$")
ENUM = re.compile(r"^[A-Z][A-Z0-9_]*$")
UNSAFE = re.compile(r"['\"\\\r\n]")
SCALAR_OPS = ("=", "!=", ">", ">=", "<", "<=", "LIKE", "NOT LIKE")
LIST_OPS = ("IN", "NOT IN")
OPERATORS = (*SCALAR_OPS, *LIST_OPS, "BETWEEN")
MAX_INT = 2**63 - 1


class GaqlError(UsageError):
    """A GAQL query, or a value meant for one, that is not valid."""


@attrs.frozen
class Enum:
    """A GAQL enum literal (``ENABLED``), written bare in a query."""

    name: str = attrs.field()

    @name.validator
    def _check(self, _: Any, value: str) -> None:
        if not ENUM.match(value):
            raise GaqlError(f"not a GAQL enum name: {value!r}")

    def __str__(self) -> str:
        return self.name


Scalar = int | str | dt.date | Enum | bool


def literal(value: Scalar) -> str:
    """``value`` as a GAQL literal; raises :class:`GaqlError` for anything unsafe."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise GaqlError("a GAQL number must fit in 64 bits")
        return str(value)
    if isinstance(value, dt.datetime):
        raise GaqlError("GAQL dates are whole days: pass a datetime.date")
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, str):
        if UNSAFE.search(value):
            raise GaqlError("a GAQL string must not contain quotes, backslashes or newlines")
        return f"'{value}'"
    raise GaqlError(f"a GAQL value must be int, str, date or Enum, not {type(value).__name__}")


def _check_field(name: str) -> str:
    if not FIELD.match(name):
        raise GaqlError(f"not a GAQL field path: {name!r}")
    return name


def _normalise_op(value: str) -> str:
    return " ".join(str(value).upper().split())


@attrs.frozen
class Condition:
    """``field op value``: ``value`` is a tuple for IN / NOT IN and a pair for BETWEEN."""

    field: str = attrs.field(converter=_check_field)
    op: str = attrs.field(converter=_normalise_op)
    value: Scalar | tuple[Scalar, ...]

    def __attrs_post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise GaqlError(f"unsupported GAQL operator {self.op!r}")
        many = isinstance(self.value, tuple)
        if self.op in LIST_OPS and not (many and self.value):
            raise GaqlError(f"{self.op} needs a non-empty tuple of values")
        if self.op == "BETWEEN" and not (many and len(self.value) == 2):  # type: ignore[arg-type]
            raise GaqlError("BETWEEN needs a (low, high) pair")
        if self.op in SCALAR_OPS and many:
            raise GaqlError(f"{self.op} takes one value")
        for item in self.value if isinstance(self.value, tuple) else (self.value,):
            literal(item)  # validates

    def render(self) -> str:
        if self.op == "BETWEEN" and isinstance(self.value, tuple):
            low, high = self.value
            return f"{self.field} BETWEEN {literal(low)} AND {literal(high)}"
        if isinstance(self.value, tuple):
            return f"{self.field} {self.op} ({', '.join(literal(v) for v in self.value)})"
        return f"{self.field} {self.op} {literal(self.value)}"

    def matches(self, actual: Any) -> bool:
        """Whether a row's value satisfies this condition (the sandbox's evaluator)."""
        want = _plain(self.value)
        if self.op == "=":
            return bool(actual == want)
        if self.op == "!=":
            return bool(actual != want)
        if self.op in LIST_OPS:
            inside = actual in want
            return inside if self.op == "IN" else not inside
        if actual is None:
            return False
        if self.op == "BETWEEN":
            low, high = want
            return bool(low <= actual <= high)
        if self.op in ("LIKE", "NOT LIKE"):
            pattern = "^" + re.escape(str(want)).replace("%", ".*").replace("_", ".") + "$"
            found = re.match(pattern, str(actual)) is not None
            return found if self.op == "LIKE" else not found
        compare = {
            ">": actual > want,
            ">=": actual >= want,
            "<": actual < want,
            "<=": actual <= want,
        }
        return bool(compare[self.op])


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _fields(value: Sequence[str]) -> tuple[str, ...]:
    fields = tuple(_check_field(f) for f in value)
    if not fields:
        raise GaqlError("a GAQL query selects at least one field")
    if len(set(fields)) != len(fields):
        raise GaqlError("a GAQL query selects each field once")
    return fields


def _resource(value: str) -> str:
    if not RESOURCE.match(value):
        raise GaqlError(f"not a GAQL resource: {value!r}")
    return value


def _order(value: Sequence[str]) -> tuple[str, ...]:
    out = []
    for item in value:
        name, _, direction = item.partition(" ")
        direction = direction.strip().upper() or "ASC"
        if direction not in ("ASC", "DESC"):
            raise GaqlError(f"ORDER BY direction must be ASC or DESC, got {direction!r}")
        out.append(f"{_check_field(name)} {direction}")
    return tuple(out)


@attrs.frozen(kw_only=True)
class Query:
    """One GAQL query. ``order_by`` items are ``"field"`` or ``"field DESC"``."""

    resource: str = attrs.field(converter=_resource)
    fields: tuple[str, ...] = attrs.field(converter=_fields)
    where: tuple[Condition, ...] = ()
    order_by: tuple[str, ...] = attrs.field(default=(), converter=_order)
    limit: int | None = attrs.field(default=None)

    @limit.validator
    def _check_limit(self, _: Any, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or value < 1):
            raise GaqlError("LIMIT must be a positive whole number")

    def render(self) -> str:
        """The query text sent to ``googleAds:search``."""
        text = f"SELECT {', '.join(self.fields)} FROM {self.resource}"  # noqa: S608 (validated)
        if self.where:
            text += " WHERE " + " AND ".join(c.render() for c in self.where)
        if self.order_by:
            text += " ORDER BY " + ", ".join(self.order_by)
        if self.limit is not None:
            text += f" LIMIT {self.limit}"
        return text

    def condition(self, field: str) -> list[Condition]:
        """The conditions on ``field``."""
        return [c for c in self.where if c.field == field]


# ------------------------------------------------------------------------------ parsing
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'[^'\\]*'|"[^"\\]*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|>=|<=|=|>|<|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "ORDER",
    "BY",
    "LIMIT",
    "IN",
    "NOT",
    "BETWEEN",
    "ASC",
    "DESC",
    "PARAMETERS",
    "LIKE",
    "TRUE",
    "FALSE",
}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise GaqlError(f"unexpected input at character {position}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word" and value.upper() in _KEYWORDS:
            kind, value = "keyword", value.upper()
        out.append((kind, value))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        got_kind, got = self.peek()
        if got_kind != kind or (value is not None and got != value):
            wanted = value or kind
            raise GaqlError(f"expected {wanted} but found {got or 'the end of the query'}")
        self.i += 1
        return got

    def accept(self, kind: str, value: str) -> bool:
        if self.peek() == (kind, value):
            self.i += 1
            return True
        return False

    def value(self) -> Scalar:
        kind, text = self.peek()
        self.i += 1
        if kind == "string":
            return text[1:-1]
        if kind == "number":
            if "." in text:
                raise GaqlError("the sandbox's GAQL takes whole numbers only")
            return int(text)
        if kind == "keyword" and text in ("TRUE", "FALSE"):
            return text == "TRUE"
        if kind == "word" and ENUM.match(text):
            return Enum(text)
        raise GaqlError(f"expected a value but found {text or 'the end of the query'}")

    def condition(self) -> Condition:
        field = self.take("word")
        if self.accept("keyword", "BETWEEN"):
            low = self.value()
            self.take("keyword", "AND")
            return Condition(field, "BETWEEN", (low, self.value()))
        negated = self.accept("keyword", "NOT")
        if self.accept("keyword", "IN"):
            self.take("op", "(")
            items = [self.value()]
            while self.accept("op", ","):
                items.append(self.value())
            self.take("op", ")")
            return Condition(field, "NOT IN" if negated else "IN", tuple(items))
        if self.accept("keyword", "LIKE"):
            return Condition(field, "NOT LIKE" if negated else "LIKE", self.value())
        if negated:
            raise GaqlError("NOT must be followed by IN or LIKE")
        op = self.take("op")
        return Condition(field, op, self.value())

    def query(self) -> Query:
        self.take("keyword", "SELECT")
        fields = [self.take("word")]
        while self.accept("op", ","):
            fields.append(self.take("word"))
        self.take("keyword", "FROM")
        resource = self.take("word")
        where: list[Condition] = []
        if self.accept("keyword", "WHERE"):
            where.append(self.condition())
            while self.accept("keyword", "AND"):
                where.append(self.condition())
        order: list[str] = []
        if self.accept("keyword", "ORDER"):
            self.take("keyword", "BY")
            while True:
                name = self.take("word")
                direction = "ASC"
                if self.peek()[0] == "keyword" and self.peek()[1] in ("ASC", "DESC"):
                    direction = self.take("keyword")
                order.append(f"{name} {direction}")
                if not self.accept("op", ","):
                    break
        limit = None
        if self.accept("keyword", "LIMIT"):
            limit = int(self.take("number"))
        if self.accept("keyword", "PARAMETERS"):
            while self.peek()[0] != "end":
                self.i += 1
        if self.peek()[0] != "end":
            raise GaqlError(f"unexpected {self.peek()[1]!r} after the query")
        return Query(
            resource=resource, fields=tuple(fields), where=tuple(where), order_by=order, limit=limit
        )


def parse(text: str) -> Query:
    """A :class:`Query` from GAQL text (SELECT, FROM, WHERE with AND, ORDER BY, LIMIT)."""
    if not text or not text.strip():
        raise GaqlError("the query is empty")
    return _Parser(text).query()
