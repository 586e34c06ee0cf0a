"""A search answer is parsed a chunk at a time: same rows, same members, bad bodies refused."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from cmis_google.client import ROWS_PER_CHUNK, answer_rows, search
from cmis_google.gaql import Query
from google_helpers import context

from cmis_core.errors import Fatal, Transient
from cmis_core.settings import PlatformSettings


def rows(n: int) -> list[dict[str, Any]]:
    return [{"campaign": {"id": str(i)}, "metrics": {"clicks": str(i * 2)}} for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 499, 500, 501, 1234])
def test_chunks_hold_every_row_in_order_and_none_is_larger_than_asked(n: int) -> None:
    body = {"results": rows(n), "fieldMask": "campaign.id", "nextPageToken": "tok"}
    rest: dict[str, Any] = {}
    chunks = list(answer_rows(json.dumps(body, indent=1), rest, 500))
    assert [row for chunk in chunks for row in chunk] == body["results"]
    assert all(0 < len(chunk) <= 500 for chunk in chunks)
    assert len(chunks) == -(-n // 500)
    assert rest == {"fieldMask": "campaign.id", "nextPageToken": "tok"}


def test_members_before_and_after_the_results_are_read_and_a_last_page_has_no_token() -> None:
    text = '{"requestId": "r1", "results": [{"a": 1}, {"a": 2}], "totalResultsCount": "2"}'
    rest: dict[str, Any] = {}
    assert list(answer_rows(text, rest, 1)) == [[{"a": 1}], [{"a": 2}]]
    assert rest == {"requestId": "r1", "totalResultsCount": "2"}
    assert "nextPageToken" not in rest


def test_an_answer_without_results_yields_nothing() -> None:
    rest: dict[str, Any] = {}
    assert list(answer_rows("{}", rest, 10)) == []
    assert list(answer_rows(' { "fieldMask" : "x" } ', rest, 10)) == []
    assert rest == {"fieldMask": "x"}


def test_a_chunk_is_parsed_only_when_asked_for() -> None:
    # the second row is broken: the first chunk still comes, the error with the second
    chunks = answer_rows('{"results": [{"a": 1}, {"a": }]}', {}, 1)
    assert next(chunks) == [{"a": 1}]
    with pytest.raises(ValueError, match=r"(?i)expect|extra"):
        next(chunks)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"results": [{"a": 1} {"a": 2}]}',
        '{"results": [{"a": 1}]',
        '{"results": [{"a": 1}]} trailing',
        '{"results" [1]}',
        "{1: 2}",
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)expect|extra"):
        list(answer_rows(text, {}, 10))


def _search_over(answers: list[str]) -> tuple[list[list[dict[str, Any]]], list[Any]]:
    """Run ``search`` against canned answers; the chunks it yields and the bodies it sent."""
    sent: list[Any] = []

    def reply(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(200, text=answers[len(sent) - 1])

    async def run() -> list[list[dict[str, Any]]]:
        settings = PlatformSettings(platform="google", environ={})
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(reply)) as http:
            query = Query(resource="campaign", fields=("campaign.id",))
            return [c async for c in search(context(settings, http), "1234567890", query)]

    return asyncio.run(run()), sent


def test_search_follows_each_token_with_the_same_query_and_chunks_every_page() -> None:
    first = json.dumps({"results": rows(ROWS_PER_CHUNK + 1), "nextPageToken": "p2"})
    second = json.dumps({"results": rows(3)})
    chunks, sent = _search_over([first, second])
    assert [len(c) for c in chunks] == [ROWS_PER_CHUNK, 1, 3]
    assert sent[1] == {**sent[0], "pageToken": "p2"}
    assert "pageToken" not in sent[0] and "pageSize" not in sent[0]


def test_search_stops_on_a_token_seen_twice_and_refuses_a_broken_body() -> None:
    looping = json.dumps({"results": rows(1), "nextPageToken": "same"})
    with pytest.raises(Fatal) as loop:
        _search_over([looping, looping, looping])
    assert loop.value.code == "paging_loop"
    with pytest.raises(Transient):
        _search_over(['{"results": [{"a": 1},'])
