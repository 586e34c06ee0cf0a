"""The error table: every Google answer cmis acts on becomes the right typed error."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from cmis_google.client import api_version, classify
from cmis_google.sandbox.style import google_error
from google_helpers import context

from cmis_core.errors import (
    AccountFailed,
    ConfigurationError,
    Fatal,
    RateLimited,
    ReauthRequired,
    SunsetApiVersion,
    TokenRejected,
    Transient,
)
from cmis_core.settings import PlatformSettings

ACCOUNT = "https://googleads.googleapis.com/v26/customers/1234567890/googleAds:search"
LIST = "https://googleads.googleapis.com/v26/customers:listAccessibleCustomers"


def answer(status: int, body: Any, url: str = ACCOUNT, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers, request=httpx2.Request("POST", url))


TABLE = [
    # (status, code, url, expected type)
    (401, "authenticationError.OAUTH_TOKEN_EXPIRED", ACCOUNT, TokenRejected),
    (401, "authenticationError.OAUTH_TOKEN_INVALID", LIST, TokenRejected),
    (401, "authenticationError.OAUTH_TOKEN_REVOKED", ACCOUNT, ReauthRequired),
    (401, "authenticationError.NOT_ADS_USER", LIST, ReauthRequired),
    (401, "authenticationError.TWO_STEP_VERIFICATION_NOT_ENROLLED", ACCOUNT, ReauthRequired),
    (401, "authenticationError.CUSTOMER_NOT_FOUND", ACCOUNT, AccountFailed),
    (403, "authorizationError.USER_PERMISSION_DENIED", ACCOUNT, AccountFailed),
    (403, "authorizationError.USER_PERMISSION_DENIED", LIST, Fatal),
    (403, "authorizationError.CUSTOMER_NOT_ENABLED", ACCOUNT, AccountFailed),
    (403, "authorizationError.CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION", ACCOUNT, AccountFailed),
    (403, "authorizationError.ACTION_NOT_PERMITTED", ACCOUNT, AccountFailed),
    (429, "quotaError.RESOURCE_EXHAUSTED", ACCOUNT, RateLimited),
    (429, "quotaError.RESOURCE_TEMPORARILY_EXHAUSTED", LIST, RateLimited),
    (500, "internalError.INTERNAL_ERROR", ACCOUNT, Transient),
    (503, "internalError.TRANSIENT_ERROR", ACCOUNT, Transient),
    (400, "requestError.PAGE_SIZE_NOT_SUPPORTED", ACCOUNT, Fatal),
    (400, "queryError.UNRECOGNIZED_FIELD", ACCOUNT, Fatal),
]


@pytest.mark.parametrize(("status", "code", "url", "kind"), TABLE)
def test_error_table(status: int, code: str, url: str, kind: type[Exception]) -> None:
    error = classify(answer(status, google_error(status, code, "a message"), url))
    assert type(error) is kind, f"{code} on {url} became {type(error).__name__}"
    assert error.code == code.partition(".")[2]
    assert error.platform == "google"


def test_success_is_no_error() -> None:
    assert classify(answer(200, {"results": []})) is None


def test_account_errors_name_the_customer_and_hint() -> None:
    body = google_error(403, "authorizationError.USER_PERMISSION_DENIED", "no access")
    error = classify(answer(403, body))
    assert isinstance(error, AccountFailed)
    assert "1234567890" in str(error)
    assert error.hint
    assert "login-customer-id" in error.hint


def test_quota_retry_delay_from_quota_details_and_retry_info() -> None:
    body = google_error(429, "quotaError.RESOURCE_EXHAUSTED", "slow", retry_delay=42)
    error = classify(answer(429, body))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 42
    only_retry_info = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "Resource has been exhausted",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}
            ],
        }
    }
    error = classify(answer(429, only_retry_info))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 2.5


@pytest.mark.parametrize(
    ("status", "grpc", "kind"),
    [
        (401, "UNAUTHENTICATED", TokenRejected),
        (403, "PERMISSION_DENIED", AccountFailed),
        (503, "UNAVAILABLE", Transient),
        (504, "DEADLINE_EXCEEDED", Transient),
        (500, "INTERNAL", Transient),
        (429, "RESOURCE_EXHAUSTED", RateLimited),
    ],
)
def test_front_end_errors_without_ads_details(
    status: int, grpc: str, kind: type[Exception]
) -> None:
    body = {"error": {"code": status, "message": "front end", "status": grpc}}
    assert type(classify(answer(status, body))) is kind


def test_scope_insufficient_is_reconsent() -> None:
    body = google_error(
        403, message="insufficient scopes", reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    )
    error = classify(answer(403, body, LIST))
    assert type(error) is ReauthRequired


def test_sunset_version_404_names_the_setting() -> None:
    old = "https://googleads.googleapis.com/v14/customers/1234567890/googleAds:search"
    error = classify(
        httpx2.Response(404, text="<html>Not Found</html>", request=httpx2.Request("POST", old))
    )
    assert isinstance(error, Fatal)
    assert error.hint
    assert "CMIS_GOOGLE_API_VERSION" in error.hint


def _ctx(**env: str):  # type: ignore[no-untyped-def]
    settings = PlatformSettings(
        platform="google", environ={f"CMIS_GOOGLE_{k}": v for k, v in env.items()}
    )
    return context(settings, httpx2.AsyncClient())


def test_api_version_setting() -> None:
    assert api_version(_ctx()) == "v26"
    assert api_version(_ctx(API_VERSION="v24")) == "v24"
    with pytest.raises(SunsetApiVersion) as sunset:
        api_version(_ctx(API_VERSION="v22"))
    assert "2026-10-07" in str(sunset.value)
    assert "CMIS_GOOGLE_API_VERSION" in (sunset.value.hint or "")
    with pytest.raises(SunsetApiVersion):
        api_version(_ctx(API_VERSION="v17"))
    with pytest.raises(ConfigurationError, match="CMIS_GOOGLE_API_VERSION"):
        api_version(_ctx(API_VERSION="26"))
