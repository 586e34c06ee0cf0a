"""Paging as platforms do it: opaque cursors, page tokens, offset/count, next links.

Each helper slices a sequence (a list or a lazy :class:`~cmis_core.testing.sandbox.data.LazyTable`)
and says how to ask for the next slice. Cursors and page tokens are opaque base64 that
bind an offset to a ``scope`` (the collection they were issued for), so a cursor that was
never issued, or was issued for another collection, raises :class:`InvalidCursor`, which
the sandbox answers with the platform's 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import attrs
from starlette.requests import Request

T = TypeVar("T")


class InvalidCursor(Exception):
    """A cursor or page token the sandbox did not issue (answered 400)."""


class InvalidParameter(Exception):
    """A paging parameter that is not a positive whole number (answered 400)."""


def encode_cursor(offset: int, scope: str = "") -> str:
    """An opaque cursor for position ``offset`` in collection ``scope``."""
    raw = json.dumps({"o": offset, "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, scope: str = "") -> int:
    """The offset inside ``cursor``; :class:`InvalidCursor` if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        offset = data["o"]
        ok = isinstance(offset, int) and offset >= 0 and data.get("s") == scope
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        ok = False
    if not ok:
        raise InvalidCursor("invalid cursor")
    return int(offset)


def read_int(request: Request, name: str, *, default: int, maximum: int | None = None) -> int:
    """A positive whole-number query parameter, clamped to ``maximum`` as platforms do."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameter(f"{name} must be a whole number") from None
    if value < 0 or (value == 0 and name != "offset"):
        raise InvalidParameter(f"{name} must be positive")
    return min(value, maximum) if maximum is not None else value


@attrs.frozen
class Slice(Generic[T]):
    """One page of ``items``: positions ``start`` to ``end`` of ``total``."""

    items: list[T]
    start: int
    end: int
    total: int

    @property
    def has_more(self) -> bool:
        return self.end < self.total


def take(items: Sequence[T], start: int, limit: int) -> Slice[T]:
    """``items[start:start + limit]`` as a :class:`Slice`."""
    total = len(items)
    start = min(start, total)
    end = min(start + limit, total)
    return Slice(list(items[start:end]), start, end, total)


def cursor_page(items: Sequence[T], *, after: str | None, limit: int, scope: str = "") -> Slice[T]:
    """The page after cursor ``after`` (the first page when ``None``)."""
    start = 0 if after is None else decode_cursor(after, scope)
    return take(items, start, limit)


def cursor_paging(
    page: Slice[Any], request: Request, *, scope: str = "", param: str = "after"
) -> dict[str, Any]:
    """Meta-style ``paging``: ``cursors.before``/``after``, and ``next`` while more remain."""
    paging: dict[str, Any] = {
        "cursors": {
            "before": encode_cursor(page.start, scope),
            "after": encode_cursor(page.end, scope),
        }
    }
    if page.has_more:
        paging["next"] = next_link(request, **{param: paging["cursors"]["after"]})
    return paging


def page_token_page(
    items: Sequence[T], *, page_token: str | None, page_size: int, scope: str = ""
) -> tuple[Slice[T], str | None]:
    """Google-style: the page at ``page_token`` and the ``nextPageToken`` (``None`` at the end)."""
    start = 0 if not page_token else decode_cursor(page_token, scope)
    page = take(items, start, page_size)
    return page, (encode_cursor(page.end, scope) if page.has_more else None)


def offset_page(items: Sequence[T], *, offset: int, count: int) -> Slice[T]:
    """Offset/count paging (``start``/``count`` on LinkedIn, ``page``/``page_size`` on TikTok)."""
    return take(items, offset, count)


def next_link(request: Request, **params: str | int) -> str:
    """The URL of ``request`` with ``params`` replaced: an absolute next/previous link."""
    return str(request.url.include_query_params(**params))
