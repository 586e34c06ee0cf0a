"""The HTTP client under a rate limit: share of the call budget used, throttle errors.

A loopback API in a separate process allows N calls in any sliding window of W seconds
(like Meta's rolling app usage), reports its usage after every call (``X-Usage``, 0..1)
and answers 429 with Retry-After past the limit. Workers call it as fast as they are let
for T seconds through cmis's client (the governor on), for a few values of the platform's
declared ``calls_per_second``; a plain httpx2 client that sleeps each Retry-After is the
control. Share = calls accepted within T s of the first / (N * T / W).

Usage: python bench/ratelimit.py [--calls 300] [--window 5] [--seconds 25] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import structlog

sys.path.insert(0, str(Path(__file__).parents[1]))

from cmis_core.http import HttpHub, MemoryStore
from cmis_core.types import Platform, RateLimitPolicy, UsageReading


def serve(calls: int, window: float) -> None:
    """The rate-limited API (run in its own process); prints its port, then serves."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: collections.deque[float] = collections.deque()
    accepted: list[float] = []
    stats = {"throttled": 0}

    async def items(request: Request) -> JSONResponse:
        now = time.monotonic()
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= calls:
            stats["throttled"] += 1
            wait = seen[0] + window - now
            headers = {"Retry-After": f"{wait:.3f}", "X-Usage": "1.0"}
            return JSONResponse({"error": "throttled"}, status_code=429, headers=headers)
        seen.append(now)
        accepted.append(now)
        return JSONResponse({"data": []}, headers={"X-Usage": f"{len(seen) / calls:.4f}"})

    async def read_stats(request: Request) -> JSONResponse:
        """Calls accepted within ``seconds`` of the first, and throttle answers; POST resets."""
        if request.method == "POST":
            seen.clear()
            accepted.clear()
            stats.update(throttled=0)
        span = float(request.query_params.get("seconds", "inf"))
        within = [t for t in accepted if accepted and t - accepted[0] <= span]
        return JSONResponse({"accepted": len(within), **stats})

    app = Starlette(
        routes=[Route("/v1/items", items), Route("/stats", read_stats, methods=["GET", "POST"])]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def usage(response: httpx2.Response) -> list[UsageReading]:
    return [UsageReading(scope="app", used=float(response.headers["x-usage"]))]


async def run_governed(base: str, rate: float, seconds: float, workers: int) -> int:
    platform = Platform(
        name="bench",
        display_name="Bench",
        api_version="v1",
        base_url=base,
        usage=usage,
        rate_limit=RateLimitPolicy(calls_per_second=rate, burst=1, max_concurrency=workers),
    )
    throttled = 0
    async with HttpHub(store=MemoryStore()) as hub:
        client = hub.client(platform)
        stop = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < stop:
                await client.get(f"{base}/v1/items")

        await asyncio.gather(*[worker() for _ in range(workers)])
        throttled = hub.counters.platform("bench").throttled
    return throttled


async def run_plain(base: str, seconds: float, workers: int) -> int:
    """The control: no governor; on a 429, sleep its Retry-After and go on."""
    throttled = 0
    async with httpx2.AsyncClient() as client:
        stop = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal throttled
            while time.monotonic() < stop:
                response = await client.get(f"{base}/v1/items")
                if response.status_code == 429:
                    throttled += 1
                    await asyncio.sleep(float(response.headers["retry-after"]))

        await asyncio.gather(*[worker() for _ in range(workers)])
    return throttled


async def measure(opts: argparse.Namespace, base: str) -> list[dict[str, object]]:
    budget = opts.calls * opts.seconds / opts.window
    nominal = opts.calls / opts.window
    rows = []
    cases: list[tuple[str, float | None]] = [
        (f"cmis, calls_per_second = true rate ({nominal:g}/s)", nominal),
        (f"cmis, calls_per_second 6x too low ({nominal / 6:g}/s)", nominal / 6),
        (f"cmis, calls_per_second 10x too high ({nominal * 10:g}/s)", nominal * 10),
        ("plain httpx2, sleeps each Retry-After", None),
    ]
    async with httpx2.AsyncClient() as control:
        for label, rate in cases:
            await asyncio.sleep(opts.window)  # an empty window before each run
            await control.post(f"{base}/stats")
            if rate is None:
                client_throttled = await run_plain(base, opts.seconds, opts.workers)
            else:
                client_throttled = await run_governed(base, rate, opts.seconds, opts.workers)
            stats = (await control.get(f"{base}/stats", params={"seconds": opts.seconds})).json()
            rows.append(
                {
                    "client": label,
                    "accepted": stats["accepted"],
                    "budget": round(budget),
                    "share": round(stats["accepted"] / budget, 3),
                    "throttle_errors": stats["throttled"],
                    "client_saw": client_throttled,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="N calls allowed per window")
    parser.add_argument("--window", type=float, default=5.0, help="W, the window in seconds")
    parser.add_argument("--seconds", type=float, default=25.0, help="T, the load per run")
    parser.add_argument("--workers", type=int, default=4, help="concurrent callers")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve:
        serve(opts.calls, opts.window)
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--calls",
            str(opts.calls),
            "--window",
            str(opts.window),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        time.sleep(0.5)
        print(
            f"budget: {opts.calls} calls per sliding {opts.window:g} s window; "
            f"{opts.seconds:g} s of load per run, {opts.workers} workers",
            flush=True,
        )
        rows = asyncio.run(measure(opts, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print()
    print("| client | accepted / budget | share of budget | throttle errors |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['client']} | {row['accepted']} / {row['budget']} | "
            f"{float(str(row['share'])):.1%} | {row['throttle_errors']} |"
        )


if __name__ == "__main__":
    main()
