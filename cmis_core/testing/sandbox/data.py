"""Deterministic, lazy fake data: the same seed gives the same records, built on demand.

A :class:`LazyTable` is a sequence of ``count`` records whose ``i``-th record is made by a
function of ``i`` only when read (with a small cache), so a sandbox can "hold" 5,000 ads
and a year of daily metrics and still start instantly. :func:`rng_for` gives each record
its own random generator derived from the seed and the record's identity, so records do
not change when the size or the reading order does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar, overload

T = TypeVar("T")


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator determined by ``seed`` and ``parts`` (``rng_for(7, "campaign", 12)``)."""
    key = ":".join([str(seed), *map(str, parts)]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


class LazyTable(Sequence[T]):
    """``count`` records, record ``i`` being ``make(i)``, built when first read."""

    def __init__(self, count: int, make: Callable[[int], T], *, cache: int = 4096) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        self._count = count
        self._make = lru_cache(maxsize=cache)(make)

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._make(index)

    def __iter__(self) -> Iterator[T]:
        for i in range(self._count):
            yield self._make(i)

    def where(self, predicate: Callable[[T], bool]) -> list[T]:
        """The records matching ``predicate`` (reads them all: use on small tables)."""
        return [r for r in self if predicate(r)]


def money(rng: random.Random, low: float, high: float) -> str:
    """A decimal amount with two places, as a string (platforms send money as text)."""
    cents = rng.randint(round(low * 100), round(high * 100))
    return str(Decimal(cents).scaleb(-2))


def last_days(days: int, *, today: dt.date | None = None) -> list[dt.date]:
    """The ``days`` whole days before ``today`` (UTC), oldest first: a metrics window."""
    end = today or dt.datetime.now(dt.UTC).date()
    return [end - dt.timedelta(days=n) for n in range(days, 0, -1)]


def preset(size: str, presets: Mapping[str, T]) -> T:
    """The preset for ``SandboxOptions.size``; a clear error naming the known sizes."""
    try:
        return presets[size]
    except KeyError:
        raise ValueError(f"unknown sandbox size {size!r}; known: {', '.join(presets)}") from None


def pick(rng: random.Random, weighted: Mapping[str, float]) -> str:
    """One key of ``weighted``, drawn with the given weights."""
    keys = list(weighted)
    return rng.choices(keys, weights=[weighted[k] for k in keys])[0]


def count_of(tables: Mapping[str, Sequence[Any]]) -> dict[str, int]:
    """``{name: len(table)}``: the ground truth ``/_sandbox/expected`` reports."""
    return {name: len(table) for name, table in tables.items()}


def select_fields(
    record: Mapping[str, Any], fields: str | None, *, always: tuple[str, ...] = ("id",)
) -> dict[str, Any]:
    """Meta-style ``fields=a,b``: only those keys (plus ``always``); every key when ``None``."""
    if not fields:
        return dict(record)
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | set(always)
    return {k: v for k, v in record.items() if k in wanted}
