"""Bench: read every Meta stream from the sandbox's bench workload and count requests.

Workload (sandbox size "bench"): 1 ad account, 200 campaigns, 1,000 ad sets, 5,000 ads,
5,000 creatives, 30 days x 5,000 ads = 150,000 daily ad-level insight rows. The plugin's
streams are read as a first sync would read them (no engine: mapping included, storage
not). Prints records/s and requests; compare with docs/benchmarks.md.

    .venv/bin/python bench/meta_sync.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

import httpx2
import structlog
from cmis_meta import sandbox
from cmis_meta.auth import MetaAuthProvider
from cmis_meta.client import platform
from cmis_meta.streams import streams

from cmis_core import PlatformContext, SandboxOptions
from cmis_core.settings import PlatformSettings
from cmis_core.testing.serve import serve


async def main(base_url: str) -> None:
    env = {
        **sandbox.env(base_url),
        "CMIS_META_HISTORY_DAYS": "31",
        "CMIS_META_DAYS_PER_JOB": "31",
        "CMIS_META_REPORT_POLL_SECONDS": "0.05",
        "CMIS_META_INSIGHTS_PAGE_SIZE": "5000",
    }
    settings = PlatformSettings(platform="meta", environ=env)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    log = structlog.get_logger("bench")
    async with httpx2.AsyncClient(timeout=60.0) as http:
        ctx = PlatformContext(platform=platform(), settings=settings, http=http, log=log)
        minted = (await http.post(base_url + "/_sandbox/meta/system_user_token")).json()
        tokens = await MetaAuthProvider().adopt(ctx, minted["access_token"])
    await httpx2.AsyncClient().post(base_url + "/_sandbox/stats/reset")
    auth = MetaAuthProvider().http_auth(tokens, settings)
    counts: dict[str, int] = {}
    started = time.perf_counter()
    async with httpx2.AsyncClient(timeout=60.0, auth=auth) as http:
        ctx = PlatformContext(platform=platform(), settings=settings, http=http, log=log)
        by_name = {s.name: s for s in streams()}
        accounts = []
        root = by_name.pop("ad_accounts")
        for partition in root.partitions(ctx, account=None, state={}):
            async for page in root.read(ctx, partition):
                accounts.extend(page.records)
        counts["ad_accounts"] = len(accounts)
        for name, stream in by_name.items():
            n = 0
            for account in accounts:
                for partition in stream.partitions(ctx, account=account, state={}):
                    async for page in stream.read(ctx, partition):
                        n += len(page.records)
            counts[name] = n
    elapsed = time.perf_counter() - started
    async with httpx2.AsyncClient() as http:
        stats = (await http.get(base_url + "/_sandbox/stats")).json()
    total = sum(counts.values())
    print(f"records: {total:,} {counts}")
    print(f"elapsed: {elapsed:.1f} s, {total / elapsed:,.0f} records/s")
    print(f"requests: {stats.get('requests', stats)}")


def _serve_in_child(conn: Any) -> None:
    """The sandbox in its own process (its own core), as a remote Graph API would be."""
    app = sandbox.build(SandboxOptions(seed=1, size="bench", rate_limit=False))
    with serve(app) as url:
        conn.send(url)
        conn.recv()  # until the parent is done


if __name__ == "__main__":
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve_in_child, args=(child,), daemon=True)
    server.start()
    try:
        asyncio.run(main(parent.recv()))
    finally:
        parent.send("stop")
        server.join(10)
