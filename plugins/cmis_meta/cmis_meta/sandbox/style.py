"""How the fake Graph API answers: error envelopes, token errors, throttles, usage headers.

Rate-limit buckets are keyed ``app``, ``account:<n>:ads_management`` or
``account:<n>:ads_insights`` (one BUC budget per ad account and type, as Meta counts
them); every answer carries ``X-App-Usage`` and, for ad-account calls,
``X-Ad-Account-Usage`` and ``X-Business-Use-Case-Usage`` (plus
``x-fb-ads-insights-throttle`` on insights), computed from the bucket's fill level.
"""

from __future__ import annotations

import json
import math
import secrets
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cmis_core.testing.sandbox import ApiStyle, TokenProblem, Usage


class GraphVersion(Convertor[str]):
    """Path segment ``v27.0``: keeps the Graph routes off ``/_sandbox/...``."""

    regex = r"v[0-9]+\.[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", GraphVersion())

TOKEN_ERRORS = {
    TokenProblem.MISSING: (104, None, "An access token is required to request this resource."),
    TokenProblem.INVALID: (190, None, "Invalid OAuth access token - Cannot parse access token"),
    TokenProblem.EXPIRED: (
        190,
        463,
        "Error validating access token: Session has expired on Friday, 27-Nov-26 10:00:00 PST.",
    ),
    TokenProblem.REVOKED: (
        190,
        458,
        "Error validating access token: The user has not authorized application 1234567890.",
    ),
}


def envelope(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
    transient: bool | None = None,
) -> dict[str, Any]:
    """Graph's error body."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    error["fbtrace_id"] = "A" + secrets.token_hex(10)
    return {"error": error}


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    kind: str = "OAuthException",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        envelope(code, message, subcode=subcode, kind=kind), status_code=status, headers=headers
    )


def _split_key(key: str) -> tuple[str | None, str]:
    """``account:<n>:<type>`` -> (``<n>``, ``<type>``); anything else -> (None, "app")."""
    parts = key.split(":")
    if len(parts) == 3 and parts[0] == "account":
        return parts[1], parts[2]
    return None, "app"


class MetaStyle(ApiStyle):
    """Graph's shapes. ``SandboxError`` codes are ``"<code>"`` or ``"<code>/<subcode>"``."""

    token_param = "access_token"

    def error(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> Response:
        main, _, sub = str(code).partition("/")
        number = int(main) if main.isdigit() else 100
        subcode = int(sub) if sub.isdigit() else None
        kind = "GraphMethodException" if number == 100 else "OAuthException"
        return graph_error(
            number, message, subcode=subcode, status=status, kind=kind, headers=headers
        )

    def token_error(self, problem: TokenProblem) -> Response:
        code, subcode, message = TOKEN_ERRORS[problem]
        challenge = f'OAuth "Facebook Platform" "invalid_token" "{message}"'
        return graph_error(code, message, subcode=subcode, headers={"WWW-Authenticate": challenge})

    def throttled(self, usage: Usage, retry_after: float) -> Response:
        account, kind = _split_key(usage.key)
        headers = self.usage_headers(usage, regain_after=retry_after)
        if account is None:
            return graph_error(4, "(#4) Application request limit reached", headers=headers)
        return graph_error(
            80004 if kind == "ads_management" else 80000,
            "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
            subcode=2446079,
            headers=headers,
        )

    def bad_request(self, message: str, *, code: str = "invalid_request") -> Response:
        return graph_error(100, message, kind="GraphMethodException")

    def not_found(self, message: str = "not found") -> Response:
        return graph_error(100, message, subcode=33, kind="GraphMethodException")

    def server_error(self, status: int = 500) -> Response:
        return JSONResponse(
            envelope(
                2,
                "An unexpected error has occurred. Please retry your request later.",
                transient=True,
            ),
            status_code=status,
        )

    def usage_headers(self, usage: Usage, *, regain_after: float | None = None) -> dict[str, str]:
        pct = usage.percent
        headers = {
            "X-App-Usage": json.dumps(
                {"call_count": pct, "total_cputime": max(0, pct - 5), "total_time": pct}
            )
        }
        account, kind = _split_key(usage.key)
        if account is None:
            return headers
        wait = (
            regain_after if regain_after is not None else (usage.reset_after if pct >= 100 else 0)
        )
        minutes = math.ceil(wait / 60) if wait else 0
        headers["X-Ad-Account-Usage"] = json.dumps(
            {
                "acc_id_util_pct": round(usage.used * 100, 2),
                "reset_time_duration": math.ceil(usage.reset_after),
                "ads_api_access_tier": "standard_access",
            }
        )
        headers["X-Business-Use-Case-Usage"] = json.dumps(
            {
                account: [
                    {
                        "type": kind,
                        "call_count": pct,
                        "total_cputime": max(0, pct - 10),
                        "total_time": max(0, pct - 5),
                        "estimated_time_to_regain_access": minutes,
                        "ads_api_access_tier": "standard_access",
                    }
                ]
            }
        )
        if kind == "ads_insights":
            headers["x-fb-ads-insights-throttle"] = json.dumps(
                {
                    "app_id_util_pct": max(0, pct - 20),
                    "acc_id_util_pct": pct,
                    "ads_api_access_tier": "standard_access",
                }
            )
        return headers

    def read_token(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip()
        return request.query_params.get("access_token")
