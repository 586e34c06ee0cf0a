"""Example Ads' API in one place: the platform record, URLs, error mapping, usage headers.

The API answers errors as ``{"error": {"code": "...", "message": "..."}}``. :func:`classify`
is the one place those answers become cmis errors; the core's HTTP client (and the paging
loops) call it for every response.
"""

from __future__ import annotations

from typing import Any

import httpx2

from cmis_core import Capability, Platform, PlatformContext, RateLimitPolicy, UsageReading
from cmis_core.errors import (
    AccountFailed,
    Fatal,
    PlatformError,
    RateLimited,
    TokenRejected,
    Transient,
)

NAME = "example"
API_VERSION = "v1"
TOKEN_CODES = frozenset({"token_missing", "token_invalid", "token_expired", "token_revoked"})


CAPABILITIES: frozenset[Capability] = frozenset(
    {
        Capability.OAUTH2,
        Capability.OAUTH2_PKCE,
        Capability.REFRESH,
        Capability.REVOKE,
        Capability.WEBHOOKS,
        Capability.SYNC,
        Capability.SANDBOX,
    }
)


def platform() -> Platform:
    """The ``example`` platform record."""
    return Platform(
        name=NAME,
        display_name="Example Ads",
        api_version=API_VERSION,
        base_url="https://api.example.com",
        auth_url="https://www.example.com",
        token_url="https://api.example.com",
        scopes=("ads.read", "ads.manage"),
        capabilities=CAPABILITIES,
        rate_limit=RateLimitPolicy(calls_per_second=20, burst=100, slow_down_at=0.75),
        classify=classify,
        usage=usage,
        lookback_days=28,
        docs_url="https://developers.example.com/ads",
    )


def api_url(ctx: PlatformContext, path: str) -> str:
    """``https://api.example.com/v1/<path>``, honouring CMIS_EXAMPLE_API_URL and _API_VERSION."""
    return f"{ctx.url('api')}/{ctx.settings.api_version(API_VERSION)}{path}"


def _error(response: httpx2.Response) -> tuple[str, str]:
    try:
        body: Any = response.json()
        error = body.get("error") or {}
        return str(error.get("code") or ""), str(error.get("message") or "")[:200]
    except (ValueError, AttributeError):
        return "", ""


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(response: httpx2.Response) -> PlatformError | None:
    """The cmis error an Example Ads answer means, or ``None`` for a success."""
    if response.is_success:
        return None
    status = response.status_code
    code, message = _error(response)
    text = f"Example Ads: {message or code or f'HTTP {status}'}"
    if code in TOKEN_CODES or status == 401:
        return TokenRejected(text, platform=NAME, code=code, status=status)
    if code == "rate_limited" or status == 429:
        return RateLimited(
            text, retry_after=_retry_after(response), platform=NAME, code=code, status=status
        )
    if status >= 500:
        return Transient(text, platform=NAME, code=code, status=status)
    if status in (403, 404):
        return AccountFailed(text, platform=NAME, code=code, status=status)
    return Fatal(text, platform=NAME, code=code, status=status)


def usage(response: httpx2.Response) -> list[UsageReading]:
    """The app's bucket as ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` report it.

    ``X-RateLimit-Reset`` is the time until the bucket is *full* again, not a wait before
    the next call: it becomes ``regain_after`` (a pause) only when nothing remains, and
    then as the time one call's worth takes to come back (``reset / limit``).
    """
    try:
        limit = int(response.headers["x-ratelimit-limit"])
        remaining = int(response.headers["x-ratelimit-remaining"])
    except (KeyError, ValueError):
        return []
    if limit <= 0:
        return []
    reset = response.headers.get("x-ratelimit-reset")
    regain = float(reset) / limit if remaining <= 0 and reset and reset.isdigit() else None
    return [UsageReading(scope="app", used=1 - remaining / limit, regain_after=regain or None)]
