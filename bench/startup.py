"""Start-up time of `cmis --help` and `cmis plugins list`, with every repo plugin installed.

Runs each command N times in a fresh interpreter and reports min / median / max wall time.
Usage: python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def measure(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cmis_core", *args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    opts = parser.parse_args()
    baseline = []
    for _ in range(opts.runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    print(f"bare interpreter: median {statistics.median(baseline) * 1000:.0f} ms")
    listing = subprocess.run(
        [sys.executable, "-m", "cmis_core", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = [row["name"] for row in json.loads(listing)]
    print(f"plugins installed: {len(names)} ({', '.join(names) or 'none'})")
    for args in (["--help"], ["plugins", "list"]):
        t = measure(args, opts.runs)
        print(
            f"cmis {' '.join(args)}: min {min(t) * 1000:.0f} ms, "
            f"median {statistics.median(t) * 1000:.0f} ms, max {max(t) * 1000:.0f} ms "
            f"({opts.runs} runs)"
        )


if __name__ == "__main__":
    main()
