"""Date windows for daily reports: the look-back, in each ad account's time zone.

Platforms restate recent days (late conversions, invalid-click credits), so every sync
re-reads the last ``lookback_days`` (``CMIS_<P>_LOOKBACK_DAYS``, else the platform's
``lookback_days``, 28 by default) ending *today in the account's time zone*: the date of a
daily metric is the account's day, not UTC's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cmis_core.types import PlatformContext


def account_today(account: Mapping[str, Any] | None, *, now: dt.datetime | None = None) -> dt.date:
    """Today in the account's time zone (``timezone`` or ``time_zone``); UTC when unknown."""
    moment = now or dt.datetime.now(dt.UTC)
    zone = (account or {}).get("timezone") or (account or {}).get("time_zone")
    if zone:
        try:
            return moment.astimezone(ZoneInfo(str(zone))).date()
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return moment.astimezone(dt.UTC).date()


def lookback_window(
    ctx: PlatformContext,
    account: Mapping[str, Any] | None,
    *,
    done_until: dt.date | None = None,
    first_days: int | None = None,
    include_today: bool = True,
    now: dt.datetime | None = None,
) -> tuple[dt.date, dt.date]:
    """``(since, until)`` to read now for one account.

    ``until`` is today in the account's zone (yesterday when ``include_today`` is false).
    ``since`` covers the look-back window, reaching further back to the day after
    ``done_until`` when the last sync is older than the window, and ``first_days`` on a
    first sync (``done_until`` unknown) when given.
    """
    days = max(1, ctx.settings.lookback_days(ctx.platform.lookback_days))
    until = account_today(account, now=now)
    if not include_today:
        until -= dt.timedelta(days=1)
    since = until - dt.timedelta(days=days - 1)
    if done_until is not None:
        since = min(since, done_until + dt.timedelta(days=1))
    elif first_days is not None:
        since = min(since, until - dt.timedelta(days=max(1, first_days) - 1))
    return since, until


def chunks(since: dt.date, until: dt.date, days: int) -> Iterator[tuple[dt.date, dt.date]]:
    """``[since, until]`` in consecutive ranges of at most ``days`` days."""
    step = dt.timedelta(days=max(1, days))
    start = since
    while start <= until:
        end = min(until, start + step - dt.timedelta(days=1))
        yield start, end
        start = end + dt.timedelta(days=1)
