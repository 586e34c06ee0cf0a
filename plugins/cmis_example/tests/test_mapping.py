"""Example Ads specifics: money conversion and the error mapping."""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from cmis_example.client import classify, usage
from cmis_example.streams import to_micros

from cmis_core.errors import AccountFailed, Fatal, RateLimited, TokenRejected, Transient


@pytest.mark.parametrize(
    ("amount", "micros"),
    [
        ("12.34", 12_340_000),
        ("0.000001", 1),
        ("0.0000005", 0),
        ("0.0000015", 2),
        (7, 7_000_000),
        (None, None),
    ],
)
def test_money_becomes_integer_micros_through_decimal(
    amount: str | int | None, micros: int | None
) -> None:
    assert to_micros(amount) == micros


def test_money_never_travels_as_float() -> None:
    with pytest.raises(TypeError):
        to_micros(0.1)  # type: ignore[arg-type]
    with pytest.raises(Fatal):
        to_micros("twelve")


def answer(status: int, code: str = "", headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, json={"error": {"code": code, "message": "m"}})


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer(401, "token_expired"), TokenRejected),
        (answer(400, "token_revoked"), TokenRejected),
        (answer(429, "rate_limited", {"Retry-After": "3"}), RateLimited),
        (answer(503, "internal_error"), Transient),
        (answer(404, "not_found"), AccountFailed),
        (answer(400, "invalid_cursor"), Fatal),
    ],
)
def test_classify(response: httpx2.Response, error: type) -> None:
    found = classify(response)
    assert type(found) is error
    if error is RateLimited:
        assert found.retry_after == 3  # type: ignore[union-attr]


def test_success_is_no_error_and_usage_is_read_from_headers() -> None:
    ok = httpx2.Response(
        200,
        headers={
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "25",
            "X-RateLimit-Reset": "4",
        },
    )
    assert classify(ok) is None
    [reading] = usage(ok)
    # Reset is when the bucket is full again, not a wait: calls may go on while any remain
    assert (reading.scope, reading.used, reading.regain_after) == ("app", 0.75, None)
    assert usage(httpx2.Response(200)) == []
    assert Decimal("0.75") == Decimal(str(reading.used))


def test_an_empty_bucket_pauses_for_one_call_s_worth_of_refill() -> None:
    spent = httpx2.Response(
        200,
        headers={
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "5",
        },
    )
    [reading] = usage(spent)
    assert (reading.used, reading.regain_after) == (1.0, 0.05)


def test_the_metrics_window_ends_yesterday_in_the_account_time_zone() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    import structlog
    from cmis_example.client import platform
    from cmis_example.streams import streams

    from cmis_core.settings import PlatformSettings
    from cmis_core.types import PlatformContext

    ctx = PlatformContext(
        platform=platform(),
        settings=PlatformSettings(platform="example", environ={"CMIS_EXAMPLE_LOOKBACK_DAYS": "7"}),
        http=httpx2.AsyncClient(),
        log=structlog.get_logger(),
    )
    metrics = next(s for s in streams() if s.name == "daily_metrics")
    windows = {}
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # 25 hours apart
        account = {"external_id": "act_1", "time_zone": zone}
        (partition,) = metrics.partitions(ctx, account=account, state={})
        windows[zone] = (partition.params["since"], partition.params["until"])
    yesterday = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date() - dt.timedelta(days=1)
    assert windows["Pacific/Kiritimati"] == (
        (yesterday - dt.timedelta(days=6)).isoformat(),
        yesterday.isoformat(),
    )
    assert windows["Pacific/Kiritimati"][1] > windows["Pacific/Pago_Pago"][1]
