"""A long JSON answer read as it arrives: the same items and members however it is cut."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cmis_core.sync.json_answer import array_chunks


async def _parts(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


async def read(data: bytes, member: str, size: int, part: int) -> tuple[list[list[Any]], dict]:
    rest: dict[str, Any] = {}
    chunks = [chunk async for chunk in array_chunks(_parts(data, part), member, rest, size)]
    return chunks, rest


ROWS = [
    {
        "campaign": {"id": str(i), "name": f"Été ☀ {i}"},
        "metrics": {"clicks": i, "ctr": i / 7, "rate": i * -1.5e-7},
    }
    for i in range(23)
]
ANSWER = {
    "requestId": "r1",
    "results": ROWS,
    "fieldMask": "campaign.id",
    "totalResultsCount": 12345678,
    "nextPageToken": "tok",
}


@pytest.mark.parametrize("part", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
async def test_every_way_of_cutting_the_body_gives_the_same_items_and_members(
    part: int, indent: int | None
) -> None:
    data = json.dumps(ANSWER, indent=indent, ensure_ascii=False).encode()
    chunks, rest = await read(data, "results", 5, part)
    assert [row for chunk in chunks for row in chunk] == ROWS
    assert [len(chunk) for chunk in chunks] == [5, 5, 5, 5, 3]
    # a number cut by a part boundary (12345678) is read whole, not as its first digits
    assert rest == {k: v for k, v in ANSWER.items() if k != "results"}


async def test_items_come_before_the_body_has_ended() -> None:
    data = json.dumps({"data": [{"n": 1}, {"n": 2}, {"n": 3}], "paging": {"next": "x"}})
    arrived: list[int] = []

    async def parts() -> AsyncIterator[bytes]:
        for at in range(0, len(data), 4):
            arrived.append(at)
            yield data[at : at + 4].encode()

    rest: dict[str, Any] = {}
    async for chunk in array_chunks(parts(), "data", rest, 1):
        if chunk == [{"n": 1}]:
            assert arrived[-1] < len(data) // 2  # the first item came with the first part of it
    assert rest == {"paging": {"next": "x"}}


@pytest.mark.parametrize(
    ("text", "items", "rest"),
    [
        ("{}", [], {}),
        (' { "fieldMask" : "x" } ', [], {"fieldMask": "x"}),
        ('{"results": []}', [], {}),
        ('{"results": null, "a": 1}', [], {"results": None, "a": 1}),
        ('{"results": [1, 2.5, "three", true, null, [4]]}', [1, 2.5, "three", True, None, [4]], {}),
    ],
)
async def test_small_answers(text: str, items: list[Any], rest: dict[str, Any]) -> None:
    for part in (1, 100):
        chunks, found = await read(text.encode(), "results", 100, part)
        assert [item for chunk in chunks for item in chunk] == items
        assert found == rest


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"results": [{"a": 1} {"a": 2}]}',
        '{"results": [{"a": 1}]',
        '{"results": [{"a": 1},',
        '{"results": [{"a": 1}]} trailing',
        '{"results" [1]}',
        "{1: 2}",
        '{"results": [{"a": }]}',
        '{"a": 12',
    ],
)
async def test_a_body_that_is_not_one_json_object_is_refused(text: str) -> None:
    for part in (1, 3, 100):
        with pytest.raises(ValueError, match=r"expected|not JSON|extra"):
            await read(text.encode(), "results", 10, part)


async def test_items_before_a_broken_one_are_yielded_first() -> None:
    rest: dict[str, Any] = {}
    chunks = array_chunks(_parts(b'{"results": [{"a": 1}, {"a": }]}', 5), "results", rest, 1)
    assert await anext(chunks) == [{"a": 1}]
    with pytest.raises(ValueError, match="not JSON"):
        await anext(chunks)


async def test_the_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size"):
        await read(b"{}", "results", 0, 10)


async def test_a_refusal_never_quotes_the_body() -> None:
    body = b'{"data": [], {"next": "https://x.example/?access_token=SECRET"}: 1}'
    with pytest.raises(ValueError, match="found a dict") as refused:
        await read(body, "data", 10, 7)
    assert "SECRET" not in str(refused.value)
