"""A long JSON answer read as it arrives: its big array a few items at a time.

Platforms answer a page as one JSON object whose one member is a long array (Google's
``results``, 10,000 rows a page; Meta's ``data``; LinkedIn's ``elements``). Held whole,
its text and then its parsed rows are the largest thing a sync keeps in memory.
:func:`array_chunks` reads such an answer from its byte chunks and yields the array's
items ``size`` at a time as soon as they are complete; the other members (``nextPageToken``,
``paging``) are put in ``rest`` as they are met. Each item is parsed by the standard
library's C decoder (``json.JSONDecoder.raw_decode``); only the structure around the items
(braces, commas, member names) is walked here: as fast as ``json.loads`` of the whole page,
where ijson with its C backend costs four times as much a row (``bench/json_answer.py``,
docs/benchmarks.md).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

_DECODE = json.JSONDecoder().raw_decode
_SPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = frozenset("0123456789.eE+-")


class _Text:
    """The answer's text so far, the parse position in it, and more of it on demand."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = aiter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.at = 0
        self.ended = False

    async def more(self) -> bool:
        """Read the next chunk (dropping what is parsed); False at the end of the body."""
        if self.ended:
            return False
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.ended = True
            tail = self._utf8.decode(b"", final=True)
            if tail:
                self.text = self.text[self.at :] + tail
                self.at = 0
            return bool(tail)
        self.text = self.text[self.at :] + self._utf8.decode(chunk)
        self.at = 0
        return True

    async def peek(self) -> str | None:
        """The next character that is not white space (not consumed); None at the end."""
        while True:
            space = _SPACE.match(self.text, self.at)
            self.at = space.end() if space else self.at
            if self.at < len(self.text):
                return self.text[self.at]
            if not await self.more():
                return None

    async def expect(self, char: str) -> None:
        found = await self.peek()
        if found != char:
            raise ValueError(f"expected {char!r}, found {_shown(found)}")
        self.at += 1

    async def value(self) -> Any:
        """The next JSON value. A number may be cut short by the end of the text so far
        (``12`` of ``12.5``), so a value is only taken once a character that cannot continue
        a number follows it, or the body has ended."""
        await self.peek()
        while True:
            try:
                item, end = _DECODE(self.text, self.at)
            except json.JSONDecodeError as exc:
                if not await self.more():
                    raise ValueError(f"not JSON: {exc.msg}") from None
                continue
            if (end < len(self.text) and self.text[end] not in _NUMBER) or not await self.more():
                self.at = end
                return item


def _shown(char: str | None) -> str:
    return "the end of the answer" if char is None else repr(char)


async def array_chunks(
    chunks: AsyncIterable[bytes], member: str, rest: dict[str, Any], size: int
) -> AsyncIterator[list[Any]]:
    """The items of array ``member`` of the JSON object in ``chunks``, ``size`` at a time.

    The object's other members are stored in ``rest`` as they are met (a member after the
    array is there only once the last chunk is yielded). Raises ``ValueError`` on a body that
    is not one JSON object, or is cut short.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    text = _Text(chunks)
    await text.expect("{")
    if await text.peek() == "}":
        text.at += 1
    else:
        while True:
            key = await text.value()
            if not isinstance(key, str):
                # its type only: a body's values may hold tokens (next links)
                raise ValueError(f"expected a member name, found a {type(key).__name__}")
            await text.expect(":")
            if key == member and await text.peek() == "[":
                text.at += 1
                async for chunk in _items(text, size):
                    yield chunk
            else:
                rest[key] = await text.value()
            if await text.peek() == "}":
                text.at += 1
                break
            await text.expect(",")
    extra = await text.peek()
    if extra is not None:
        raise ValueError(f"extra data after the answer: {extra!r}")


async def _items(text: _Text, size: int) -> AsyncIterator[list[Any]]:
    """An array's items after its ``[``, through its ``]``."""
    if await text.peek() == "]":
        text.at += 1
        return
    chunk: list[Any] = []
    while True:
        chunk.append(await text.value())
        if len(chunk) >= size:
            yield chunk
            chunk = []
        following = await text.peek()
        text.at += 1
        if following == "]":
            break
        if following != ",":
            raise ValueError(f"expected ',' or ']' in the array, found {_shown(following)}")
    if chunk:
        yield chunk
