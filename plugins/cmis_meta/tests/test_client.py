"""The classification table, usage headers, appsecret_proof and money, as pure functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal

import httpx2
import pytest
from cmis_meta.client import MetaAuth, classify, minor_to_micros, to_micros, usage, version

from cmis_core.errors import (
    AccountFailed,
    Fatal,
    RateLimited,
    ReauthRequired,
    SplitRequired,
    SunsetApiVersion,
    TokenRejected,
    Transient,
)


def graph(
    code: int, sub: int | None = None, *, status: int = 400, message: str = "m", headers=None
):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if sub is not None:
        error["error_subcode"] = sub
    request = httpx2.Request("GET", "https://graph.facebook.com/v27.0/act_42/insights")
    return httpx2.Response(status, json={"error": error}, headers=headers or {}, request=request)


@pytest.mark.parametrize(
    ("code", "sub", "expected"),
    [
        (190, None, TokenRejected),
        (190, 463, TokenRejected),  # expired: exchange once, then reconnect
        (102, None, TokenRejected),
        (190, 458, ReauthRequired),  # app not installed
        (190, 459, ReauthRequired),  # checkpointed
        (190, 460, ReauthRequired),  # password changed
        (190, 464, ReauthRequired),
        (190, 467, ReauthRequired),  # logged out
        (4, None, RateLimited),
        (17, 2446079, RateLimited),
        (32, None, RateLimited),
        (613, 1487742, RateLimited),
        (80000, None, RateLimited),
        (80004, 2446079, RateLimited),
        (80014, None, RateLimited),
        (1, None, Transient),
        (2, None, Transient),
        (100, 1487534, SplitRequired),
        (10, None, AccountFailed),
        (200, None, AccountFailed),
        (294, None, AccountFailed),
        (100, 33, AccountFailed),
        (100, None, Fatal),
        (3, None, Fatal),
    ],
)
def test_classification_table(code: int, sub: int | None, expected: type) -> None:
    error = classify(graph(code, sub))
    assert type(error) is expected
    assert error.platform == "meta"
    assert error.code == code


def test_reauth_subcodes_are_not_token_rejected() -> None:
    assert not isinstance(classify(graph(190, 460)), TokenRejected)


def test_code_1_asking_for_less_data_is_a_split() -> None:
    message = "Please reduce the amount of data you're asking for, then retry your request"
    assert isinstance(classify(graph(1, message=message)), SplitRequired)


def test_rate_limit_wait_comes_from_the_headers() -> None:
    buc = {
        "42": [{"type": "ads_insights", "call_count": 100, "estimated_time_to_regain_access": 7}]
    }
    error = classify(graph(80000, headers={"X-Business-Use-Case-Usage": json.dumps(buc)}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 420  # minutes -> seconds
    account = {"acc_id_util_pct": 100, "reset_time_duration": 95}
    error = classify(graph(613, headers={"X-Ad-Account-Usage": json.dumps(account)}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 95
    assert classify(graph(4)).retry_after == 300  # app limit: Meta gives no wait


def test_success_and_bare_http_errors() -> None:
    ok = httpx2.Response(200, json={"data": []})
    assert classify(ok) is None
    assert isinstance(classify(httpx2.Response(502, text="<html>")), Transient)
    assert isinstance(classify(httpx2.Response(429)), RateLimited)


def test_error_messages_never_echo_a_token() -> None:
    token = "EAAB" + "x" * 120
    error = classify(graph(190, message=f"Malformed access token {token}"))
    assert token not in str(error)
    assert "<redacted>" in str(error)


def test_usage_headers_become_readings_per_scope() -> None:
    request = httpx2.Request("GET", "https://graph.facebook.com/v27.0/act_42/ads")
    headers = {
        "X-App-Usage": json.dumps({"call_count": 28, "total_time": 25, "total_cputime": 30}),
        "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 9.5, "reset_time_duration": 100}),
        "X-Business-Use-Case-Usage": json.dumps(
            {
                "42": [
                    {
                        "type": "ads_management",
                        "call_count": 95,
                        "total_cputime": 20,
                        "total_time": 20,
                        "estimated_time_to_regain_access": 2,
                    }
                ],
                "777": [{"type": "pages", "call_count": 5}],
            }
        ),
        "x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": 61, "acc_id_util_pct": 12}),
    }
    readings = {r.scope: r for r in usage(httpx2.Response(200, headers=headers, request=request))}
    assert readings["app"].used == pytest.approx(0.30)
    assert readings["insights:app"].used == pytest.approx(0.61)
    assert readings["account:act_42"].used == pytest.approx(0.95)
    assert readings["account:act_42"].regain_after == 120
    assert readings["business:pages:777"].used == pytest.approx(0.05)
    assert usage(httpx2.Response(200, request=request)) == []


@pytest.mark.parametrize(("percent", "wait"), [(9.5, None), (99.9, None), (100, 100)])
def test_the_account_reset_time_is_a_wait_only_at_the_limit(percent, wait) -> None:
    request = httpx2.Request("GET", "https://graph.facebook.com/v27.0/act_42/ads")
    header = json.dumps({"acc_id_util_pct": percent, "reset_time_duration": 100})
    response = httpx2.Response(200, headers={"X-Ad-Account-Usage": header}, request=request)
    (reading,) = usage(response)
    assert reading.scope == "account:act_42"
    assert reading.used == pytest.approx(percent / 100)
    assert reading.regain_after == wait


def test_appsecret_proof_is_hmac_of_the_token() -> None:
    auth = MetaAuth("tok", "sekrit")
    request = next(auth.auth_flow(httpx2.Request("GET", "https://graph.facebook.com/v27.0/me?x=1")))
    expected = hmac.new(b"sekrit", b"tok", hashlib.sha256).hexdigest()
    assert request.url.params["appsecret_proof"] == expected
    assert request.headers["authorization"] == "Bearer tok"
    assert "tok" not in repr(auth)
    bare = next(MetaAuth("tok").auth_flow(httpx2.Request("GET", "https://graph.facebook.com/me")))
    assert "appsecret_proof" not in bare.url.params


@pytest.mark.parametrize(
    ("amount", "micros"),
    [
        ("5339.5", 5_339_500_000),
        ("0.01", 10_000),
        ("123456789.123456", 123_456_789_123_456),
        ("0.0000005", 0),  # half-even: rounds to the even neighbour
        ("0.0000015", 2),
        ("1e2", 100_000_000),
        (Decimal("19.99"), 19_990_000),
        ("", None),
        (None, None),
    ],
)
def test_money_from_decimal_strings_to_micros(amount, micros) -> None:
    assert to_micros(amount) == micros


def test_money_never_travels_as_float() -> None:
    with pytest.raises(TypeError):
        to_micros(12.5)  # type: ignore[arg-type]
    with pytest.raises(Fatal):
        to_micros("12,50")


def test_budgets_in_minor_units_honour_the_currency_offset() -> None:
    assert minor_to_micros("5000", "USD") == 50_000_000
    assert minor_to_micros("5000", "JPY") == 5_000_000_000
    assert minor_to_micros(None, "EUR") is None


def test_a_sunset_version_is_refused(ctx) -> None:
    import attrs

    old = attrs.evolve(
        ctx.settings, environ={**ctx.settings.environ, "CMIS_META_API_VERSION": "v24.0"}
    )
    with pytest.raises(SunsetApiVersion):
        version(attrs.evolve(ctx, settings=old), today=dt.date(2026, 11, 28))
    assert version(ctx) == "v27.0"
