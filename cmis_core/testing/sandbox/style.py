"""How a platform shapes its errors and usage headers: override per platform.

The toolkit calls these methods whenever it answers on the platform's behalf (a refused
token, a throttle, a bad cursor, an injected fault), so a Meta sandbox answers with
``{"error": {"code": 190, ...}}`` and status 400 where the generic style answers 401.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cmis_core.testing.sandbox.tokens import TokenProblem


@attrs.frozen(kw_only=True)
class Usage:
    """A rate-limit bucket's state after a call: what usage headers are computed from."""

    key: str
    limit: int
    remaining: int
    used: float  # fraction of the bucket consumed, 0..1
    reset_after: float  # seconds until the bucket is full again

    @property
    def percent(self) -> int:
        """``used`` as a whole percentage, the way most platforms report it."""
        return min(100, math.ceil(self.used * 100))


class ApiStyle:
    """The generic style: RFC 6750 bearer errors, 429 with Retry-After, X-RateLimit-*.

    Subclass and override the methods your platform answers differently.
    """

    token_param: str | None = "access_token"  # query parameter also accepted, or None

    def read_token(self, request: Request) -> str | None:
        """The access token a request presents (Authorization: Bearer, else the query)."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if self.token_param:
            return request.query_params.get(self.token_param)
        return None

    def error(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> Response:
        """An error response in the platform's envelope."""
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )

    def token_error(self, problem: TokenProblem) -> Response:
        """The answer to a missing, invalid, expired or revoked access token."""
        code = "invalid_request" if problem is TokenProblem.MISSING else "invalid_token"
        challenge = f'Bearer error="{code}", error_description="access token {problem}"'
        return self.error(
            401,
            f"token_{problem}",
            f"access token {problem}",
            headers={"WWW-Authenticate": challenge},
        )

    def throttled(self, usage: Usage, retry_after: float) -> Response:
        """The answer when a caller is over its rate limit."""
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        headers.update(self.usage_headers(usage))
        return self.error(429, "rate_limited", "too many calls; slow down", headers=headers)

    def bad_request(self, message: str, *, code: str = "invalid_request") -> Response:
        """A malformed request (a cursor the platform did not issue, a bad parameter)."""
        return self.error(400, code, message)

    def not_found(self, message: str = "not found") -> Response:
        return self.error(404, "not_found", message)

    def server_error(self, status: int = 500) -> Response:
        """A platform-side failure (used by injected ``server_error`` faults)."""
        return self.error(status, "internal_error", "an unexpected error occurred; retry")

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        """Headers reporting ``usage`` on every answered call."""
        return {
            "X-RateLimit-Limit": str(usage.limit),
            "X-RateLimit-Remaining": str(usage.remaining),
            "X-RateLimit-Reset": str(max(0, math.ceil(usage.reset_after))),
        }

    def fault_body(self, status: int, body: Any) -> Response:
        """A raw injected fault: ``body`` as JSON (or the generic envelope when ``None``)."""
        if body is None:
            return self.error(status, "injected_fault", f"injected fault {status}")
        return JSONResponse(body, status_code=status)
