"""Bench: the sync engine against a platform's sandbox served by another process, on loopback.

Each measurement runs in a fresh process (so ``ru_maxrss`` is that run's peak): import
everything, open the store, note the RSS (*post-import*), sync every stream, note the peak
RSS, records/s, API calls and throttles. The sandbox is a third process (uvicorn), never
an in-process transport.

    .venv/bin/python bench/sync.py                       # the default matrix
    .venv/bin/python bench/sync.py meta:bench:sqlite     # one case: platform:size:backend
    .venv/bin/python bench/sync.py example:medium:postgres --rate-limit
    .venv/bin/python bench/sync.py meta:bench:sqlite --latency-ms 100   # 100 ms per call

Cases are ``platform:size:backend[:extra=value,...]`` (extra goes to SandboxOptions.extra).
Figures go in docs/benchmarks.md (Sync engine benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT = [
    "meta:small:sqlite",
    "meta:bench:sqlite",
    "meta:bench:postgres",
    "example:medium:sqlite:days=3",
    "example:large:sqlite:days=3",
    "example:large:postgres:days=3",
    "google:medium:sqlite",
    "google:large:sqlite",
]
META_ENV = {
    "CMIS_META_HISTORY_DAYS": "31",
    "CMIS_META_DAYS_PER_JOB": "31",
    "CMIS_META_REPORT_POLL_SECONDS": "0.05",
    "CMIS_META_INSIGHTS_PAGE_SIZE": "1000",
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """RSS every ``every`` seconds on a thread while a sync runs: whether memory is flat over
    the run, not only its peak (``rss_by_quarter``: the highest sample in each quarter)."""

    def __init__(self, every: float = 0.25) -> None:
        import threading

        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def by_quarter(self) -> list[float]:
        n = len(self.samples)
        if n < 4:
            return []  # too short a run to say
        return [round(max(self.samples[i * n // 4 : (i + 1) * n // 4]), 1) for i in range(4)]


# ------------------------------------------------------------------ the sandbox process
def serve(
    platform: str, size: str, rate_limit: bool, extra: dict[str, Any], latency_ms: int
) -> None:
    from cmis_core.contract import SandboxOptions
    from cmis_core.factory import get_registry
    from cmis_core.testing.serve import serve as serve_app

    sandbox = get_registry().sandbox(platform)
    options = SandboxOptions(
        seed=1, size=size, rate_limit=rate_limit, latency_ms=latency_ms, extra=extra
    )
    app = sandbox.app(options)
    with serve_app(app) as url:
        print(url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


@contextlib.contextmanager
def sandbox_process(
    platform: str, size: str, rate_limit: bool, extra: dict[str, Any], latency_ms: int
) -> Iterator[str]:
    args = [sys.executable, __file__, "--serve", platform, size, json.dumps(extra)]
    args += ["--latency-ms", str(latency_ms)]
    if rate_limit:
        args.append("--rate-limit")
    child = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)


# ------------------------------------------------------------------ one measured run
async def tokens_for(platform: str, base_url: str, env: dict[str, str]) -> Any:
    import httpx2
    import structlog

    from cmis_core.factory import get_registry
    from cmis_core.settings import Settings
    from cmis_core.types import PlatformContext, TokenSet

    if platform == "meta":
        async with httpx2.AsyncClient() as http:
            minted = (await http.post(base_url + "/_sandbox/meta/system_user_token")).json()
        return TokenSet(access_token=minted["access_token"])
    registry = get_registry()
    provider = registry.auth_provider(platform)
    redirect = "http://127.0.0.1:8000/oauth/callback"
    async with httpx2.AsyncClient(timeout=30) as http:
        ctx = PlatformContext(
            platform=registry.platform(platform),
            settings=Settings.from_env(env).platform(platform),
            http=http,
            log=structlog.get_logger("bench"),
        )
        request = await provider.begin(
            ctx,
            redirect_uri=redirect,
            state=secrets.token_urlsafe(8),
            scopes=registry.platform(platform).scopes,
        )
        answer = await http.get(request.url)
        params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        return await provider.complete(ctx, params=params, request=request, redirect_uri=redirect)


@contextlib.contextmanager
def database(backend: str) -> Iterator[Any]:
    from cmis_core.testing.databases import (
        new_postgres_database,
        new_postgres_template,
        sqlite_database_at,
    )

    with tempfile.TemporaryDirectory() as home:
        if backend == "sqlite":
            yield sqlite_database_at(Path(home))
        else:
            with (
                new_postgres_template() as template,
                new_postgres_database(template, Path(home)) as db,
            ):
                yield db


async def measure(platform: str, base_url: str, backend: str) -> dict[str, Any]:
    import structlog
    from sqlalchemy import insert

    import cmis_core.sync.engine  # noqa: F401  (imported before the post-import figure)
    from cmis_core.factory import get_registry
    from cmis_core.http import HttpHub
    from cmis_core.store import open_store, tables
    from cmis_core.sync.engine import sync_integration

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    registry = get_registry()
    sandbox_env = registry.sandbox(platform).env(base_url)
    env = {**sandbox_env, **(META_ENV if platform == "meta" else {})}
    own = ("CMIS_SYNC_", f"CMIS_{platform.upper()}_")  # overrides from the environment
    env.update({k: v for k, v in os.environ.items() if k.startswith(own)})
    tokens = await tokens_for(platform, base_url, env)
    with database(backend) as db:
        settings = db.settings(**env)
        with open_store(settings) as store:
            org = store.create_org("bench")
            with store.org(org.id) as conn:
                conn.execute(
                    insert(tables.integrations).values(
                        org_id=org.id, platform=platform, status="active"
                    )
                )

            async def provide() -> Any:
                return tokens

            import gc

            gc.collect()
            post_import = rss_mb()
            started = time.perf_counter()
            with RssSampler() as sampler:
                async with HttpHub.from_settings(settings) as hub:
                    result = await sync_integration(
                        store,
                        registry,
                        settings,
                        org_id=org.id,
                        platform=platform,
                        hub=hub,
                        tokens_provider=provide,
                    )
            elapsed = time.perf_counter() - started
            peak = peak_mb()
    import httpx2

    async with httpx2.AsyncClient() as http:
        stats = (await http.get(base_url + "/_sandbox/stats")).json()
        answer = await http.get(f"{base_url}/_sandbox/{platform}/stats")
        platform_stats = answer.json() if answer.status_code == 200 else {}
    return {
        "platform": platform,
        "backend": backend,
        "status": result.status,
        "records": result.records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(result.records / elapsed),
        "calls": result.calls,
        "throttled": result.throttled,
        "post_import_rss_mb": round(post_import, 1),
        "peak_rss_mb": round(peak, 1),
        "growth_mb": round(peak - post_import, 1),
        "rss_by_quarter": sampler.by_quarter(),
        "streams": {n: s.records for n, s in result.streams.items()},
        "sandbox_calls": stats.get("calls", {}),
        "sandbox_throttled": stats.get("throttled", 0),
        "max_concurrent_calls": stats.get("max_in_flight", 0),
        "rate_limits": stats.get("rate_limits"),
        "report_runs": platform_stats.get("report_runs"),
        "max_running_report_runs": platform_stats.get("max_running_report_runs"),
    }


def run_case(case: str, rate_limit: bool, latency_ms: int = 0) -> dict[str, Any]:
    platform, size, backend, *rest = case.split(":")
    extra: dict[str, Any] = {}
    for item in rest:
        for pair in item.split(","):
            key, _, value = pair.partition("=")
            extra[key] = int(value) if value.isdigit() else value
    with sandbox_process(platform, size, rate_limit, extra, latency_ms) as url:
        out = subprocess.run(
            [sys.executable, __file__, "--measure", platform, url, backend],
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        raise SystemExit(f"{case} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    figures.update(size=size, extra=extra, rate_limit=rate_limit, latency_ms=latency_ms)
    budgets = figures.pop("rate_limits", None)
    if rate_limit and budgets:
        # the busiest rate-limit key: units charged against burst + rate x its active time
        key, used = max(budgets.items(), key=lambda kv: kv[1]["charged"])
        figures["budget_key"] = key
        figures["budget_used"] = round(used["charged"] / used["allowed"], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=DEFAULT)
    parser.add_argument("--rate-limit", action="store_true", help="sandbox rate limits on")
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox latency per call")
    parser.add_argument("--json", action="store_true", help="print each case's figures as JSON")
    parser.add_argument("--serve", nargs=3, metavar=("PLATFORM", "SIZE", "EXTRA"))
    parser.add_argument("--measure", nargs=3, metavar=("PLATFORM", "URL", "BACKEND"))
    args = parser.parse_args()
    if args.serve:
        platform, size, extra = args.serve
        serve(platform, size, args.rate_limit, json.loads(extra), args.latency_ms)
        return
    if args.measure:
        platform, url, backend = args.measure
        print(json.dumps(asyncio.run(measure(platform, url, backend))))
        return
    for case in args.cases:
        figures = run_case(case, args.rate_limit, args.latency_ms)
        if args.json:
            print(json.dumps({"case": case, **figures}), flush=True)
            continue
        jobs = figures.get("max_running_report_runs")
        print(
            f"{case:36} {figures['records']:>8,} rec {figures['seconds']:>6.1f} s "
            f"{figures['records_per_s']:>6,} rec/s {figures['calls']:>5} calls "
            f"{figures['throttled']:>3} throttled  "
            f"RSS post-import {figures['post_import_rss_mb']} MB "
            f"peak {figures['peak_rss_mb']} MB (+{figures['growth_mb']} MB) {figures['status']}"
            + (
                f" | RSS by quarter {'/'.join(map(str, figures['rss_by_quarter']))}"
                if figures["rss_by_quarter"]
                else ""
            )
            + (f" budget used {figures['budget_used']:.1%}" if "budget_used" in figures else "")
            + f" | calls at once <= {figures['max_concurrent_calls']}"
            + (f", report runs {figures['report_runs']} (<= {jobs} at once)" if jobs else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
