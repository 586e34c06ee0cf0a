"""Paging loops a stream's ``read`` uses, over the shared client in ``ctx.http``.

Four shapes cover the platforms: a cursor sent back as a parameter (Meta's ``after``,
given only while ``paging.next`` exists), a page token (Google's ``nextPageToken``, in the
query or a JSON body), offset/count (LinkedIn ``start``/``count``, TikTok ``page``), and a
next link followed as is. Each yields one list of raw items per page and stops when the
platform says there is no more. A cursor, token or link seen twice raises
:class:`~cmis_core.errors.Fatal` instead of looping for ever.

Each shape takes ``chunk=`` to read every page as it arrives, ``chunk`` items at a time,
instead of whole. One call's answer is read by :mod:`cmis_core.sync.answers` (re-exported
here): every response goes through ``raise_for_response`` (the platform's ``classify``,
with a generic mapping as the fallback). Next links and cursors are never logged (Meta's
links carry the access token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from cmis_core.errors import Fatal
from cmis_core.sync.answers import (
    BODY_ATTEMPTS,
    CHUNK,
    Params,
    default_error,
    json_chunks,
    raise_for_response,
    request_json,
    retry_after,
)
from cmis_core.types import PlatformContext

__all__ = [
    "BODY_ATTEMPTS",
    "CHUNK",
    "after_cursor",
    "cursor_pages",
    "default_error",
    "json_chunks",
    "link_pages",
    "mapped",
    "next_link",
    "offset_pages",
    "page_token_pages",
    "paginate",
    "paginate_chunks",
    "raise_for_response",
    "request_json",
    "retry_after",
]

T = TypeVar("T")

Items = str | Callable[[Any], list[Any]]


def _items(body: Any, items: Items) -> list[Any]:
    found = items(body) if callable(items) else (body or {}).get(items)
    return list(found or [])


class _Cursors:
    """The loop guard every shape shares: a cursor, token or link seen twice is Fatal."""

    def __init__(self, ctx: PlatformContext, max_pages: int | None) -> None:
        self.ctx = ctx
        self.max_pages = max_pages
        self.pages = 0
        self.seen: set[str] = set()

    def after(self, following: str | None, items: int) -> str | None:
        """The token of the next page, or None when this page was the last."""
        self.pages += 1
        name = self.ctx.platform.name
        self.ctx.log.debug("sync.page_fetched", platform=name, page=self.pages, items=items)
        if not following or (self.max_pages is not None and self.pages >= self.max_pages):
            return None
        if following in self.seen:
            raise Fatal(
                f"{name} returned a cursor it had already returned (page {self.pages}); "
                "stopping instead of looping",
                platform=name,
                code="paging_loop",
            )
        self.seen.add(following)
        return following


async def paginate(
    ctx: PlatformContext,
    fetch: Callable[[str | None], Awaitable[tuple[list[Any], str | None]]],
    *,
    max_pages: int | None = None,
) -> AsyncIterator[list[Any]]:
    """The loop under every shape: ``fetch(token)`` gives a page and the next token (or None)."""
    cursors = _Cursors(ctx, max_pages)
    token: str | None = None
    while True:
        items, following = await fetch(token)
        count = len(items)
        yield items  # a consumer that empties it (``mapped``) frees the parsed page at once
        token = cursors.after(following, count)
        if token is None:
            return


async def paginate_chunks(
    ctx: PlatformContext,
    fetch: Callable[[str | None, dict[str, Any]], AsyncIterator[list[Any]]],
    following: Callable[[Any], str | None],
    *,
    max_pages: int | None = None,
) -> AsyncIterator[list[Any]]:
    """:func:`paginate` for pages read as they arrive: ``fetch(token, rest)`` yields a page's
    items a chunk at a time and fills ``rest`` with the answer's other members, from which
    ``following(rest)`` gives the next token."""
    cursors = _Cursors(ctx, max_pages)
    token: str | None = None
    while True:
        rest: dict[str, Any] = {}
        count = 0
        async for chunk in fetch(token, rest):
            count += len(chunk)
            yield chunk
        token = cursors.after(following(rest), count)
        if token is None:
            return


def _member(items: Items) -> str:
    if not isinstance(items, str):
        raise TypeError("pages read in chunks name their items' member (a str), not a function")
    return items


def mapped(items: list[Any], mapper: Callable[[Any], T]) -> list[T]:
    """``[mapper(item) for item in items]``, then ``items`` emptied: the parsed page is freed
    at once instead of living on (in the stream's frame) while its records are stored.

    ``yield Page(records=mapped(items, lambda i: to_record(i, partition)))``
    """
    out = [mapper(item) for item in items]
    items.clear()
    return out


def after_cursor(body: Any) -> str | None:
    """Meta's rule: the ``paging.cursors.after`` cursor, but only while ``paging.next`` exists."""
    paging = (body or {}).get("paging") or {}
    if not paging.get("next"):
        return None
    cursor = (paging.get("cursors") or {}).get("after")
    return str(cursor) if cursor else None


def cursor_pages(
    ctx: PlatformContext,
    url: str,
    *,
    params: Params | None = None,
    items: Items = "data",
    cursor_param: str = "after",
    next_cursor: Callable[[Any], str | None] = after_cursor,
    max_pages: int | None = None,
    chunk: int | None = None,
) -> AsyncIterator[list[Any]]:
    """Pages of a cursor-paged collection: the cursor goes back as ``cursor_param``.

    With ``chunk``, each page is read as it arrives and yielded ``chunk`` items at a time
    (:func:`json_chunks`; ``items`` must then name the member), never held whole.
    """

    def query(cursor: str | None) -> dict[str, Any]:
        sent = dict(params or {})
        if cursor is not None:
            sent[cursor_param] = cursor
        return sent

    if chunk is not None:
        member = _member(items)

        def chunks(cursor: str | None, rest: dict[str, Any]) -> AsyncIterator[list[Any]]:
            return json_chunks(
                ctx, "GET", url, member=member, rest=rest, size=chunk, params=query(cursor)
            )

        return paginate_chunks(ctx, chunks, next_cursor, max_pages=max_pages)

    async def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
        body = await request_json(ctx, "GET", url, params=query(cursor))
        return _items(body, items), next_cursor(body)

    return paginate(ctx, fetch, max_pages=max_pages)


def page_token_pages(
    ctx: PlatformContext,
    url: str,
    *,
    params: Params | None = None,
    json: Mapping[str, Any] | None = None,
    method: str = "GET",
    items: Items = "results",
    token_field: str = "nextPageToken",  # noqa: S107 (a field name)
    token_param: str = "pageToken",  # noqa: S107 (a parameter name)
    max_pages: int | None = None,
    chunk: int | None = None,
) -> AsyncIterator[list[Any]]:
    """Google-style pages: ``nextPageToken`` goes back as ``pageToken`` (in ``json`` if
    given). With ``chunk``, each page is read as it arrives, ``chunk`` items at a time."""

    def request(token: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        query, body = dict(params or {}), dict(json) if json is not None else None
        if token is not None:
            (body if body is not None else query)[token_param] = token
        return query, body

    def following(answer: Any) -> str | None:
        token = (answer or {}).get(token_field)
        return str(token) if token else None

    if chunk is not None:
        member = _member(items)

        def chunks(token: str | None, rest: dict[str, Any]) -> AsyncIterator[list[Any]]:
            query, body = request(token)
            return json_chunks(
                ctx, method, url, member=member, rest=rest, size=chunk, params=query, json=body
            )

        return paginate_chunks(ctx, chunks, following, max_pages=max_pages)

    async def fetch(token: str | None) -> tuple[list[Any], str | None]:
        query, body = request(token)
        answer = await request_json(ctx, method, url, params=query, json=body)
        return _items(answer, items), following(answer)

    return paginate(ctx, fetch, max_pages=max_pages)


def offset_pages(
    ctx: PlatformContext,
    url: str,
    *,
    params: Params | None = None,
    items: Items = "elements",
    offset_param: str = "start",
    limit_param: str = "count",
    limit: int = 100,
    total: Callable[[Any], int | None] | None = None,
    start: int = 0,
    max_pages: int | None = None,
    chunk: int | None = None,
) -> AsyncIterator[list[Any]]:
    """Offset/count pages; ends on a short page or when ``total(body)`` is reached. With
    ``chunk``, each page is read as it arrives, ``chunk`` items at a time."""

    def query(token: str | None) -> tuple[int, dict[str, Any]]:
        offset = start if token is None else int(token)
        return offset, {**(params or {}), offset_param: offset, limit_param: limit}

    def following(offset: int, found: int, body: Any) -> str | None:
        after = offset + found
        known = total(body) if total is not None else None
        done = found < limit or not found or (known is not None and after >= known)
        return None if done else str(after)

    if chunk is not None:
        member = _member(items)
        page = {"offset": start, "found": 0}  # of the page being read

        async def chunks(token: str | None, rest: dict[str, Any]) -> AsyncIterator[list[Any]]:
            page["offset"], sent = query(token)
            page["found"] = 0
            async for part in json_chunks(
                ctx, "GET", url, member=member, rest=rest, size=chunk, params=sent
            ):
                page["found"] += len(part)
                yield part

        def after(rest: Any) -> str | None:
            return following(page["offset"], page["found"], rest)

        return paginate_chunks(ctx, chunks, after, max_pages=max_pages)

    async def fetch(token: str | None) -> tuple[list[Any], str | None]:
        offset, sent = query(token)
        body = await request_json(ctx, "GET", url, params=sent)
        found = _items(body, items)
        return found, following(offset, len(found), body)

    return paginate(ctx, fetch, max_pages=max_pages)


def next_link(body: Any) -> str | None:
    """``paging.next`` (Meta, Snapchat), the common place for a next link."""
    paging = (body or {}).get("paging") or {}
    link = paging.get("next") or paging.get("next_link")
    return str(link) if link else None


def link_pages(
    ctx: PlatformContext,
    url: str,
    *,
    params: Params | None = None,
    items: Items = "data",
    next_url: Callable[[Any], str | None] = next_link,
    max_pages: int | None = None,
    chunk: int | None = None,
) -> AsyncIterator[list[Any]]:
    """Pages reached by following each next link as is (never logged: it may hold tokens).
    With ``chunk``, each page is read as it arrives, ``chunk`` items at a time."""
    if chunk is not None:
        member = _member(items)

        def chunks(link: str | None, rest: dict[str, Any]) -> AsyncIterator[list[Any]]:
            sent = params if link is None else None
            return json_chunks(
                ctx, "GET", link or url, member=member, rest=rest, size=chunk, params=sent
            )

        return paginate_chunks(ctx, chunks, next_url, max_pages=max_pages)

    async def fetch(link: str | None) -> tuple[list[Any], str | None]:
        if link is None:
            body = await request_json(ctx, "GET", url, params=params)
        else:
            body = await request_json(ctx, "GET", link)
        return _items(body, items), next_url(body)

    return paginate(ctx, fetch, max_pages=max_pages)
