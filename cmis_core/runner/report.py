"""What a run did, per integration, and the exit code it adds up to.

Statuses of an integration in a report:

- ``succeeded``, ``partial``, ``failed``: a sync ran (see ``SyncResult``);
- ``refreshed``: only a token refresh was due, and it was done; ``checked``: the token
  was looked at (an expiry ahead announced, if any) and needed nothing;
- ``rescheduled``: the platform asked for a wait too long to sleep; due again after it;
- ``locked``: another run holds the integration's lock; nothing was done (exit 75);
- ``needs_reauth``: the grant is gone. Exit 77 only when it became so *in this run*;
  integrations that already needed it are listed with ``exit_code`` 0, so one tenant's
  expired grant does not fail an hourly job forever;
- ``queued``: the Celery executor enqueued the work;
- ``error``: a configuration problem (exit 2) or a bug (exit 70).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from cmis_core.errors import ExitCode
from cmis_core.sync.result import SyncResult

SUCCEEDED, PARTIAL, FAILED = "succeeded", "partial", "failed"
REFRESHED, CHECKED, RESCHEDULED, LOCKED = "refreshed", "checked", "rescheduled", "locked"
NEEDS_REAUTH, QUEUED, ERROR = "needs_reauth", "queued", "error"


@attrs.define(kw_only=True)
class IntegrationReport:
    """One integration in a run."""

    org: str
    platform: str
    integration_id: int
    status: str = SUCCEEDED
    exit_code: ExitCode = ExitCode.OK
    refresh: str | None = None  # refreshed, expiring, needs_reauth, failed, skipped
    error: str | None = None
    earlier: bool = False  # needs_reauth since an earlier run
    next_sync_at: dt.datetime | None = None
    sync: SyncResult | None = None

    def to_json(self) -> dict[str, Any]:
        result = self.sync
        return {
            "org": self.org,
            "platform": self.platform,
            "integration_id": self.integration_id,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "refresh": self.refresh,
            "error": self.error,
            "needs_reauth_since_earlier_run": self.earlier,
            "run_id": result.run_id if result else None,
            "records": result.records if result else 0,
            "calls": result.calls if result else 0,
            "throttled": result.throttled if result else 0,
            "retry_after": result.retry_after if result else None,
            "next_sync_at": self.next_sync_at.isoformat() if self.next_sync_at else None,
            "accounts": [
                {"id": a.external_id, "status": a.status, "error": a.error}
                for a in (result.accounts.values() if result else ())
            ],
            "streams": [
                {
                    "name": s.name,
                    "records": s.records,
                    "calls": s.calls,
                    "throttled": s.throttled,
                    "errors": s.errors,
                }
                for s in (result.streams.values() if result else ())
            ],
        }


@attrs.define(kw_only=True)
class RunReport:
    """A whole run: every integration looked at, the inbox, and the exit code."""

    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    executor: str = "local"
    integrations: list[IntegrationReport] = attrs.field(factory=list)
    inbox: dict[str, int] | None = None
    inbox_error: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        """The codes of every integration and of the inbox, by the core's precedence."""
        codes = [i.exit_code for i in self.integrations]
        if self.inbox_error is not None or (self.inbox or {}).get("failed"):
            codes.append(ExitCode.PARTIAL)
        return ExitCode.combine(*codes)

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": int(self.exit_code),
            "executor": self.executor,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "integrations": [i.to_json() for i in self.integrations],
            "inbox": self.inbox,
            "inbox_error": self.inbox_error,
        }
