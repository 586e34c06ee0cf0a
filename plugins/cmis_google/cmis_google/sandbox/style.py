"""Google's error envelope, as the sandbox answers it.

``{"error": {"code", "message", "status", "details": [GoogleAdsFailure, RetryInfo, ...]}}``
with the HTTP status mapped to the gRPC status name the way Google's REST gateway does.
Google sends no usage headers and no ``Retry-After``: a quota error carries its wait in
``QuotaErrorDetails.retryDelay`` and a ``google.rpc.RetryInfo`` detail.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse, Response

from cmis_core.testing.sandbox import ApiStyle, TokenProblem, Usage

VERSION = "v26"
GRPC = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"
TOKEN_CODES = {
    TokenProblem.INVALID: "OAUTH_TOKEN_INVALID",
    TokenProblem.EXPIRED: "OAUTH_TOKEN_EXPIRED",
    TokenProblem.REVOKED: "OAUTH_TOKEN_REVOKED",
}


def google_error(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    retry_delay: float | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A Google Ads error body; ``code`` is ``"category.CODE"`` (``"quotaError.QUOTA_ERROR"``).

    ``retry_delay`` adds ``QuotaErrorDetails.retryDelay`` and a ``RetryInfo`` detail;
    ``reason`` a ``google.rpc.ErrorInfo`` (the shape of errors from Google's front end).
    """
    details: list[dict[str, Any]] = []
    text = message or MESSAGES.get(status, "error")
    if code:
        category, _, name = code.partition(".")
        item: dict[str, Any] = {"errorCode": {category: name}, "message": text}
        if retry_delay is not None:
            item["details"] = {
                "quotaErrorDetails": {
                    "rateScope": "ACCOUNT",
                    "rateName": "Requests per account",
                    "retryDelay": f"{retry_delay:g}s",
                }
            }
        details.append(
            {
                "@type": FAILURE_TYPE,
                "errors": [item],
                "requestId": "sandbox-request",
            }
        )
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay:g}s"}
        )
    if reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        )
    error: dict[str, Any] = {
        "code": status,
        "message": MESSAGES.get(status, text) if code else text,
        "status": GRPC.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


class GoogleStyle(ApiStyle):
    """How the Google Ads sandbox answers refused tokens, throttling and faults."""

    token_param = None  # Google takes the token in the Authorization header only

    def error(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> Response:
        body = google_error(status, code if "." in code else None, message)
        return JSONResponse(body, status_code=status, headers=headers)

    def token_error(self, problem: TokenProblem) -> Response:
        if problem is TokenProblem.MISSING:
            body = google_error(
                401,
                message="Request is missing required authentication credential.",
                reason="CREDENTIALS_MISSING",
            )
        else:
            body = google_error(
                401, f"authenticationError.{TOKEN_CODES[problem]}", f"access token {problem}"
            )
        return JSONResponse(body, status_code=401)

    def throttled(self, usage: Usage, retry_after: float) -> Response:
        delay = max(1, math.ceil(retry_after))
        body = google_error(
            429,
            "quotaError.RESOURCE_TEMPORARILY_EXHAUSTED",
            "Too many requests. Retry in the time given in retry_delay.",
            retry_delay=delay,
        )
        return JSONResponse(body, status_code=429)

    def bad_request(self, message: str, *, code: str = "invalid_request") -> Response:
        name = "requestError.INVALID_PAGE_TOKEN" if code == "invalid_cursor" else None
        return JSONResponse(google_error(400, name, message), status_code=400)

    def server_error(self, status: int = 500) -> Response:
        code = "internalError.INTERNAL_ERROR" if status == 500 else "internalError.TRANSIENT_ERROR"
        body = google_error(status, code, "An internal error has occurred.")
        return JSONResponse(body, status_code=status)

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        return {}

    def fault_body(self, status: int, body: Any) -> Response:
        return JSONResponse(body if body is not None else google_error(status), status_code=status)
