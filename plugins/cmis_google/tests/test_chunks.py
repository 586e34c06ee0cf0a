"""A search answer is read a chunk at a time as it arrives: every page, every row, bad
bodies refused (the parser itself: tests/sync/test_json_answer.py in the core)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from cmis_google.client import ROWS_PER_CHUNK, search
from cmis_google.gaql import Query
from google_helpers import context

from cmis_core.errors import Fatal, Transient
from cmis_core.settings import PlatformSettings
from cmis_core.sync.paging import BODY_ATTEMPTS


def rows(n: int) -> list[dict[str, Any]]:
    return [{"campaign": {"id": str(i)}, "metrics": {"clicks": str(i * 2)}} for i in range(n)]


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
    broken = '{"results": [{"a": 1},'
    with pytest.raises(Transient, match="not the JSON expected"):
        _search_over([broken] * BODY_ATTEMPTS)  # asked for again, then given up


def test_a_page_that_breaks_off_is_asked_for_again() -> None:
    whole = json.dumps({"results": rows(3)})
    chunks, sent = _search_over([whole[:40], whole])
    assert [row for chunk in chunks for row in chunk][-3:] == rows(3)
    assert len(sent) == 2 and sent[0] == sent[1]
