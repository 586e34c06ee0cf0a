"""Parsing one 10,000-row search page: whole, as it arrives (ours), and with ijson.

Why :mod:`cmis_core.sync.json_answer` walks the structure itself and hands each row to the
standard library's C decoder instead of using ijson: the same page, cut into 64 KiB parts
as a socket delivers it, parsed 100 rows at a time.

    python bench/json_answer.py [--rows 10000] [--runs 5]

ijson is not a dependency: ``pip install ijson`` to include it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from cmis_core.sync.json_answer import array_chunks

PART = 64 * 1024


def page(rows: int) -> bytes:
    """A Google Ads ``search`` page of ad-level daily metrics, as the REST API writes it."""
    results = [
        {
            "customer": {"resourceName": "customers/1234567890", "id": "1234567890"},
            "campaign": {"resourceName": f"customers/1234567890/campaigns/{i // 200}"},
            "adGroup": {"resourceName": f"customers/1234567890/adGroups/{i // 20}"},
            "adGroupAd": {
                "resourceName": f"customers/1234567890/adGroupAds/{i // 20}~{i}",
                "ad": {"id": str(i)},
            },
            "metrics": {
                "clicks": str(i % 97),
                "impressions": str(i * 13 % 10007),
                "costMicros": str(i * 12345),
                "conversions": i % 7 / 2,
                "conversionsValue": i % 11 * 1.25,
            },
            "segments": {"date": f"2026-11-{i % 28 + 1:02d}"},
        }
        for i in range(rows)
    ]
    return json.dumps(
        {"results": results, "fieldMask": "metrics.clicks,segments.date", "nextPageToken": "t"}
    ).encode()


async def parts(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), PART):
        yield data[at : at + PART]


def whole(data: bytes) -> int:
    return len(json.loads(data)["results"])


def ours(data: bytes) -> int:
    async def run() -> int:
        rest: dict[str, Any] = {}
        return sum([len(c) async for c in array_chunks(parts(data), "results", rest, 100)])

    return asyncio.run(run())


def with_ijson(data: bytes) -> int:
    import ijson  # type: ignore[import-untyped,unused-ignore]  # optional, untyped

    found: list[Any] = ijson.sendable_list()
    rest: list[Any] = ijson.sendable_list()
    rows = ijson.items_coro(found, "results.item", use_float=True)
    token = ijson.items_coro(rest, "nextPageToken")
    count = 0
    for at in range(0, len(data), PART):
        part = data[at : at + PART]
        rows.send(part)
        token.send(part)
        count += len(found)
        del found[:]
    rows.close()
    token.close()
    return count + len(found)


def timed(parse: Callable[[bytes], int], data: bytes, rows: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        assert parse(data) == rows
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = page(args.rows)
    print(f"page: {args.rows:,} rows, {len(data) / 1e6:.1f} MB, parts of {PART // 1024} KiB")
    cases: list[tuple[str, Callable[[bytes], int]]] = [
        ("json.loads, whole page", whole),
        ("array_chunks, as it arrives", ours),
    ]
    try:
        import ijson  # type: ignore[import-untyped,unused-ignore]

        cases.append((f"ijson {ijson.__version__} ({ijson.backend}), as it arrives", with_ijson))
    except ImportError:
        print("(ijson not installed: skipped)")
    for name, parse in cases:
        seconds = timed(parse, data, args.rows, args.runs)
        print(f"{name:44} {seconds * 1000:7.1f} ms  {seconds / args.rows * 1e6:5.1f} µs/row")


if __name__ == "__main__":
    main()
