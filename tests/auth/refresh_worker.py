"""A process of the single-flight test: THREADS threads that each call ``fresh_tokens``.

Run as ``python -m tests.auth.refresh_worker`` with the CMIS_* settings in the environment
and ``WORKER_ORG``, ``WORKER_THREADS``, ``WORKER_START`` (epoch seconds to start at, so
both processes collide). Prints one JSON line: the access token each thread ended with
(hashed: the test compares them, nothing secret is printed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time

import httpx2

from cmis_core.auth.tokens import fresh_tokens
from cmis_core.factory import load_plugins
from cmis_core.settings import Settings
from cmis_core.store import open_store
from cmis_core.vault import Vault


def main() -> None:
    from cmis_example import plugin

    settings = Settings.from_env()
    registry = load_plugins(
        Settings.from_env({"CMIS_PLUGINS_STRICT": "1"}),
        entry_points=[],
        builtins=[("example", plugin)],
    )
    store = open_store(settings)
    vault = Vault.from_settings(settings)
    org_id = int(os.environ["WORKER_ORG"])
    start = float(os.environ["WORKER_START"])
    results: list[str] = []
    errors: list[str] = []

    async def work() -> str:
        async with httpx2.AsyncClient(timeout=10.0) as http:
            tokens = await fresh_tokens(
                store, vault, registry, settings, org_id, "example", http=http
            )
        return hashlib.sha256(tokens.access_token.encode()).hexdigest()

    def thread() -> None:
        time.sleep(max(0.0, start - time.time()))
        try:
            results.append(asyncio.run(work()))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=thread) for _ in range(int(os.environ["WORKER_THREADS"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    print(json.dumps({"tokens": results, "errors": errors}))


if __name__ == "__main__":
    main()
