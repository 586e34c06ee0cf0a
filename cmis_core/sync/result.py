"""What a sync run did: per stream, per ad account, and the run as a whole."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from cmis_core.errors import ExitCode

SUCCEEDED, PARTIAL, FAILED = "succeeded", "partial", "failed"
ACCOUNT_OK, ACCOUNT_FAILED, ACCOUNT_SKIPPED = "ok", "failed", "skipped"


@attrs.define(kw_only=True)
class StreamResult:
    """One stream of a run: records written, pages, API calls and what went wrong."""

    name: str
    records: int = 0  # records written (inserted, updated or found unchanged)
    pages: int = 0
    partitions: int = 0
    calls: int = 0  # API calls, every attempt included
    throttled: int = 0  # throttle answers received (each waited out and retried)
    retries: int = 0
    errors: int = 0  # units (stream x account) that ended in an error
    messages: list[str] = attrs.field(factory=list)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define(kw_only=True)
class AccountResult:
    """One ad account of a run: ``ok``, ``failed`` (with the error) or ``skipped``."""

    external_id: str
    status: str = ACCOUNT_OK
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define(kw_only=True)
class SyncResult:
    """The outcome of :func:`cmis_core.sync.engine.sync_integration`.

    ``status`` is ``succeeded``, ``partial`` (some stream or account failed, the rest is
    stored) or ``failed`` (the run stopped: re-authorisation needed, or nothing could be
    read). ``retry_after`` is set when the platform asked for a wait too long to sleep
    inline: reschedule the integration after it. ``reauth_required`` means the grant is gone.
    """

    run_id: int
    org_id: int
    integration_id: int
    platform: str
    status: str = SUCCEEDED
    resumed: bool = False
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    streams: dict[str, StreamResult] = attrs.field(factory=dict)
    accounts: dict[str, AccountResult] = attrs.field(factory=dict)
    error: str | None = None
    reauth_required: bool = False
    retry_after: float | None = None
    warnings: list[str] = attrs.field(factory=list)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams.values())

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.streams.values())

    @property
    def throttled(self) -> int:
        return sum(s.throttled for s in self.streams.values())

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def exit_code(self) -> ExitCode:
        """0 succeeded, 77 re-authorisation needed, 1 anything partial or failed."""
        if self.status == SUCCEEDED:
            return ExitCode.OK
        if self.reauth_required:
            return ExitCode.NOPERM
        return ExitCode.PARTIAL

    def stream(self, name: str) -> StreamResult:
        """The result of stream ``name`` (created empty on first use)."""
        found = self.streams.get(name)
        if found is None:
            found = self.streams[name] = StreamResult(name=name)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "org_id": self.org_id,
            "integration_id": self.integration_id,
            "platform": self.platform,
            "status": self.status,
            "resumed": self.resumed,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "records": self.records,
            "calls": self.calls,
            "throttled": self.throttled,
            "error": self.error,
            "reauth_required": self.reauth_required,
            "retry_after": self.retry_after,
            "warnings": list(self.warnings),
            "streams": {n: s.to_json() for n, s in self.streams.items()},
            "accounts": {n: a.to_json() for n, a in self.accounts.items()},
        }
