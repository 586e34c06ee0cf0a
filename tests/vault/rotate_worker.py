"""A rotation in its own process, for the kill -9 test.

``python -m tests.vault.rotate_worker URL BATCH_SIZE HANG_AT``: rotates the credentials
table at URL under CMIS_SECRET_KEYS; before committing batch HANG_AT (0: never) it prints
``hanging`` and sleeps, so the test can kill it with an open, written transaction.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from cmis_core.logs import configure_logging
from cmis_core.vault import Vault, rotate
from tests.vault.conftest import sqlite_engine


def main() -> None:
    configure_logging()
    url, batch_size, hang_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    engine = (
        sqlite_engine(Path(url.removeprefix("sqlite:///")))
        if url.startswith("sqlite")
        else sa.create_engine(url)
    )
    table = sa.Table("credentials", sa.MetaData(), autoload_with=engine)
    vault = Vault.from_keys(os.environ["CMIS_SECRET_KEYS"].split(","))
    batches = 0

    @contextmanager
    def begin() -> Iterator[sa.Connection]:
        nonlocal batches
        with engine.begin() as conn:
            yield conn
            batches += 1
            if batches == hang_at:
                print("hanging", flush=True)
                time.sleep(600)

    report = rotate(begin, table, vault, batch_size=batch_size)
    print(f"rewritten {report.rewritten} remaining {sum(report.remaining.values())}", flush=True)


if __name__ == "__main__":
    main()
