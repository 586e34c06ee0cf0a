"""The sync engine's tunables (``CMIS_SYNC_*``) and its progress callback type."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from cmis_core.errors import ConfigurationError

if TYPE_CHECKING:
    from cmis_core.settings import Settings

__all__ = ["Progress", "SyncConfig"]

Progress = Callable[[str, int], None]
"""Called after each commit with a stream name and the records just stored for it."""


ROWS_IN_FLIGHT_SQLITE = 500
ROWS_IN_FLIGHT_POSTGRES = 2000


def rows_in_flight_default(settings: Settings) -> int:
    """Rows read and not yet stored, by default: fewer on SQLite, where a transaction is
    cheap, than on PostgreSQL, where each costs round trips and a WAL flush and bigger
    batches keep the throughput (docs/benchmarks.md "What changed for memory")."""
    return ROWS_IN_FLIGHT_SQLITE if settings.is_sqlite else ROWS_IN_FLIGHT_POSTGRES


@attrs.frozen(kw_only=True)
class SyncConfig:
    """The engine's tunables (``CMIS_SYNC_*``)."""

    concurrency: int | None = None  # units at a time; None: the platform's max_concurrency
    max_pages_in_flight: int = 16  # pages read and not yet stored
    max_rows_in_flight: int = 500  # their rows (a page bigger than this goes alone)
    batch_rows: int = 5000  # rows the writer gathers into one transaction at most
    new_accounts_enabled: bool = True
    throttle_retries: int = 20  # unit re-reads after throttles outlasting the HTTP retries
    transient_retries: int = 3
    backoff_max: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SyncConfig:
        new = (settings.environ.get("CMIS_SYNC_NEW_ACCOUNTS") or "enabled").strip().lower()
        if new not in ("enabled", "disabled"):
            raise ConfigurationError(
                f"CMIS_SYNC_NEW_ACCOUNTS must be enabled or disabled, got {new!r}"
            )
        return cls(
            concurrency=(settings.whole_number("CMIS_SYNC_CONCURRENCY", 0, minimum=1) or None),
            max_pages_in_flight=settings.whole_number(
                "CMIS_SYNC_MAX_PAGES_IN_FLIGHT", 16, minimum=1
            ),
            max_rows_in_flight=settings.whole_number(
                "CMIS_SYNC_MAX_ROWS_IN_FLIGHT", rows_in_flight_default(settings), minimum=1
            ),
            batch_rows=settings.whole_number("CMIS_SYNC_BATCH_ROWS", 5000, minimum=1),
            new_accounts_enabled=new == "enabled",
        )
