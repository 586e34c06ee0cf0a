"""The Google Ads REST API in one place: the platform record, URLs, headers, errors, search.

Errors arrive in Google's standard envelope::

    {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
         "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "..."}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]}}

:func:`classify` is the one place those answers become cmis errors (the table is in the
README). It reads the request's URL from the response, so an error on
``customers/{id}/...`` is :class:`~cmis_core.errors.AccountFailed` (that account only)
where the same error elsewhere is :class:`~cmis_core.errors.Fatal`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import httpx2

from cmis_core import Capability, Platform, PlatformContext, RateLimitPolicy
from cmis_core.errors import (
    AccountFailed,
    ConfigurationError,
    Fatal,
    PlatformError,
    RateLimited,
    ReauthRequired,
    SunsetApiVersion,
    TokenRejected,
    Transient,
    UsageError,
)
from cmis_core.sync.paging import CHUNK, json_chunks, request_json, retry_after
from cmis_google.gaql import Query

NAME = "google"
API_VERSION = "v26"
# Google has not published v26's sunset yet; majors live about 12 months (v22: 2025-10-15 to
# 2026-10-07), so this is the planning date until the timetable names one.
API_VERSION_SUNSET = dt.date(2027, 10, 6)
SUNSET: Mapping[str, dt.date] = {
    "v19": dt.date(2026, 2, 11),
    "v20": dt.date(2026, 6, 10),
    "v21": dt.date(2026, 8, 5),
    "v22": dt.date(2026, 10, 7),
}
OLDEST_LIVE = 23
SCOPE = "https://www.googleapis.com/auth/adwords"
CUSTOMER_ID = re.compile(r"^\d{10}$")
ACCOUNT_PATH = re.compile(r"/customers/(\d+)/")
VERSION_PATH = re.compile(r"^/(v\d+)/")

CAPABILITIES: frozenset[Capability] = frozenset(
    {
        Capability.OAUTH2,
        Capability.OAUTH2_PKCE,
        Capability.REFRESH,
        Capability.REVOKE,
        Capability.WEBHOOKS,
        Capability.LEADS,
        Capability.SYNC,
        Capability.SANDBOX,
    }
)

# AuthenticationError codes a refreshed access token cures.
TOKEN_CODES = frozenset(
    {"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_HEADER_INVALID"}
)
# Codes that end one account's sync and leave the others going.
ACCOUNT_CODES = frozenset(
    {
        "CUSTOMER_NOT_FOUND",
        "CUSTOMER_NOT_ENABLED",
        "CLIENT_CUSTOMER_ID_INVALID",
        "CLIENT_CUSTOMER_ID_IS_REQUIRED",
        "USER_PERMISSION_DENIED",
        "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION",
        "ACTION_NOT_PERMITTED",
        "DEVELOPER_TOKEN_NOT_APPROVED",
        "TEST_ACCOUNT_NOT_ALLOWED",
    }
)
HINTS = {
    "USER_PERMISSION_DENIED": "the user has no access to this account, or the manager in "
    "login-customer-id does not manage it (CMIS_GOOGLE_LOGIN_CUSTOMER_ID)",
    "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION": "the Google Cloud project of "
    "CMIS_GOOGLE_CLIENT_ID is at Test access level: it can reach test accounts only",
    "ACTION_NOT_PERMITTED": "the Cloud project's access level does not allow this account",
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT": "reconnect and grant the adwords scope",
    "CUSTOMER_NOT_ENABLED": "the account is cancelled, suspended or not set up yet",
}


def platform() -> Platform:
    """The ``google`` platform record."""
    return Platform(
        name=NAME,
        display_name="Google Ads",
        api_version=API_VERSION,
        api_version_sunset=API_VERSION_SUNSET,
        base_url="https://googleads.googleapis.com",
        auth_url="https://accounts.google.com",
        token_url="https://oauth2.googleapis.com",
        scopes=(SCOPE,),
        capabilities=CAPABILITIES,
        # Google publishes no per-second figure; Basic access is 15,000 operations a day,
        # and paging requests for the same query are free.
        rate_limit=RateLimitPolicy(calls_per_second=5, burst=10, max_concurrency=4),
        classify=classify,
        usage=None,
        lookback_days=14,
        docs_url="https://developers.google.com/google-ads/api/docs/start",
    )


# ------------------------------------------------------------------------------ settings
def api_version(ctx: PlatformContext) -> str:
    """``CMIS_GOOGLE_API_VERSION`` (default v26), refused clearly when malformed or sunset."""
    variable = ctx.settings.variable("API_VERSION")
    version = ctx.settings.api_version(API_VERSION)
    match = re.fullmatch(r"v(\d+)", version)
    if match is None:
        raise ConfigurationError(
            f"{variable} must look like v{API_VERSION[1:]} (the major version in the URL), "
            f"got {version!r}"
        )
    sunset = SUNSET.get(version)
    if sunset is not None or int(match.group(1)) < OLDEST_LIVE:
        when = f" on {sunset:%Y-%m-%d}" if sunset else ""
        raise SunsetApiVersion(
            f"Google Ads API {version} was sunset{when}; requests to it fail",
            hint=f"set {variable} to {API_VERSION} (or unset it for the default)",
        )
    return version


def customer_id(value: str | int, *, what: str = "customer id") -> str:
    """A Google Ads customer id as the API wants it: ten digits, no dashes."""
    text = str(value).replace("-", "").strip()
    if not CUSTOMER_ID.match(text):
        raise UsageError(f"a Google Ads {what} is ten digits (dashes allowed), got {value!r}")
    return text


def login_customer_id(ctx: PlatformContext) -> str | None:
    """``CMIS_GOOGLE_LOGIN_CUSTOMER_ID``: the manager every call acts through, when set."""
    value = ctx.settings.get("LOGIN_CUSTOMER_ID")
    return customer_id(value, what="login customer id") if value else None


def api_url(ctx: PlatformContext, path: str) -> str:
    """``https://googleads.googleapis.com/v26/<path>``, honouring the API URL and version."""
    return f"{ctx.url('api')}/{api_version(ctx)}/{path.lstrip('/')}"


def headers(ctx: PlatformContext, *, login: str | None = None) -> dict[str, str]:
    """``login-customer-id`` when acting through a manager; ``developer-token`` if configured."""
    out = {"Accept": "application/json"}
    token = ctx.settings.get("DEVELOPER_TOKEN")
    if token:
        out["developer-token"] = token
    if login:
        out["login-customer-id"] = customer_id(login, what="login customer id")
    return out


# ------------------------------------------------------------------------------ calls
async def list_accessible_customers(
    ctx: PlatformContext, *, access_token: str | None = None
) -> list[str]:
    """``customers:listAccessibleCustomers``: the ids the user reaches directly.

    ``access_token`` is sent as a bearer header when ``ctx.http`` does not add one itself.
    """
    sent = headers(ctx)
    if access_token:
        sent["Authorization"] = f"Bearer {access_token}"
    body = await request_json(
        ctx, "GET", api_url(ctx, "customers:listAccessibleCustomers"), headers=sent
    )
    names = (body or {}).get("resourceNames") or []
    return [str(name).rpartition("/")[2] for name in names]


ROWS_PER_CHUNK = CHUNK  # rows parsed, mapped and queued at a time out of a 10,000-row page


async def search(
    ctx: PlatformContext,
    customer: str,
    query: Query,
    *,
    login: str | None = None,
    chunk_rows: int | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every row of ``query`` on ``customer``, in lists of at most ``chunk_rows`` (default
    :data:`ROWS_PER_CHUNK`): each page of the same query with its ``nextPageToken``, read
    and parsed a chunk at a time as it arrives (never held whole, as text or parsed).

    Never sends a page size (the API pages by 10,000 rows and refuses ``pageSize``); a page
    token seen twice raises :class:`~cmis_core.errors.Fatal` (``paging_loop``).
    """
    url = api_url(ctx, f"customers/{customer_id(customer)}/googleAds:search")
    text = query.render()
    sent = headers(ctx, login=login)
    seen: set[str] = set()
    token: str | None = None
    pages = 0
    while True:
        body: dict[str, Any] = {"query": text}
        if token is not None:
            body["pageToken"] = token
        rest: dict[str, Any] = {}
        async for chunk in json_chunks(
            ctx,
            "POST",
            url,
            member="results",
            rest=rest,
            size=chunk_rows or ROWS_PER_CHUNK,
            json=body,
            headers=sent,
        ):
            yield chunk  # no reference kept: the caller frees a chunk when done
        pages += 1
        ctx.log.debug("sync.page_fetched", platform=NAME, page=pages)
        following = rest.get("nextPageToken")
        if not following:
            return
        if str(following) in seen:
            raise Fatal(
                f"{NAME} returned a page token it had already returned (page {pages}); "
                "stopping instead of looping",
                platform=NAME,
                code="paging_loop",
            )
        token = str(following)
        seen.add(token)


async def search_stream(
    ctx: PlatformContext, customer: str, query: Query, *, login: str | None = None
) -> list[dict[str, Any]]:
    """Every row of ``query`` from ``googleAds:searchStream``: one body, so small results only."""
    url = api_url(ctx, f"customers/{customer_id(customer)}/googleAds:searchStream")
    answer = await request_json(
        ctx, "POST", url, json={"query": query.render()}, headers=headers(ctx, login=login)
    )
    batches = answer if isinstance(answer, list) else [answer]
    rows: list[dict[str, Any]] = []
    for batch in batches:
        if isinstance(batch, Mapping) and "error" in batch:  # an error after streaming began
            raise error_from_body(batch, status=int(batch["error"].get("code") or 500), path=url)
        rows.extend((batch or {}).get("results") or [])
    return rows


# ------------------------------------------------------------------------------ errors
@attrs.frozen
class Failure:
    """What an error envelope says: HTTP status, gRPC status, error codes, retry delay."""

    status: int
    grpc: str = ""
    message: str = ""
    codes: tuple[tuple[str, str], ...] = ()  # (category, code): ("quotaError", "...")
    reasons: tuple[str, ...] = ()  # google.rpc.ErrorInfo reasons
    retry_delay: float | None = None
    first_message: str = ""

    @property
    def names(self) -> set[str]:
        return {code for _, code in self.codes} | set(self.reasons)

    def has(self, category: str) -> bool:
        return any(c == category for c, _ in self.codes)


def duration(value: Any) -> float | None:
    """A protobuf JSON duration (``"30s"``, ``"1.5s"``) in seconds."""
    if isinstance(value, Mapping):  # {"seconds": "30", "nanos": 0}
        try:
            return float(value.get("seconds") or 0) + float(value.get("nanos") or 0) / 1e9
        except (TypeError, ValueError):
            return None
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            return None
    return None


def read_failure(status: int, body: Any) -> Failure:
    """The parts of Google's error envelope cmis acts on."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return Failure(status=status)
    codes: list[tuple[str, str]] = []
    reasons: list[str] = []
    delay: float | None = None
    first = ""
    for detail in error.get("details") or []:
        if not isinstance(detail, Mapping):
            continue
        kind = str(detail.get("@type") or "")
        if kind.endswith("GoogleAdsFailure"):
            for item in detail.get("errors") or []:
                for category, code in (item.get("errorCode") or {}).items():
                    codes.append((str(category), str(code)))
                first = first or str(item.get("message") or "")
                quota = (item.get("details") or {}).get("quotaErrorDetails") or {}
                delay = duration(quota.get("retryDelay")) if delay is None else delay
        elif kind.endswith("RetryInfo"):
            delay = duration(detail.get("retryDelay"))
        elif kind.endswith("ErrorInfo") and detail.get("reason"):
            reasons.append(str(detail["reason"]))
    return Failure(
        status=status,
        grpc=str(error.get("status") or ""),
        message=str(error.get("message") or "")[:200],
        codes=tuple(codes),
        reasons=tuple(reasons),
        retry_delay=delay,
        first_message=first[:300],
    )


def error_from_body(
    body: Any, *, status: int, path: str, retry_header: float | None = None
) -> PlatformError:
    """The cmis error a Google Ads error body means (the README's error table)."""
    failure = read_failure(status, body)
    names = failure.names
    account = ACCOUNT_PATH.search(path)
    where = f" (customer {account.group(1)})" if account else ""
    label = ", ".join(f"{c}.{n}" for c, n in failure.codes) or failure.grpc or f"HTTP {status}"
    text = f"Google Ads{where}: {label}: {failure.first_message or failure.message or status}"
    code = failure.codes[0][1] if failure.codes else (failure.grpc or None)
    common: dict[str, Any] = {"platform": NAME, "code": code, "status": status}
    if failure.has("quotaError") or failure.grpc == "RESOURCE_EXHAUSTED" or status == 429:
        delay = failure.retry_delay if failure.retry_delay is not None else retry_header
        return RateLimited(text, retry_after=delay, **common)
    hint = next((HINTS[n] for n in names if n in HINTS), None)
    if names & ACCOUNT_CODES or (failure.has("authorizationError") and account):
        if account:
            return AccountFailed(text, hint=hint, **common)
        return Fatal(text, hint=hint, **common)
    if "ACCESS_TOKEN_SCOPE_INSUFFICIENT" in names:
        return ReauthRequired(text, hint=hint, **common)
    if failure.has("authenticationError"):
        if names & TOKEN_CODES:
            return TokenRejected(text, **common)
        return ReauthRequired(text, **common)
    if status == 401 or failure.grpc == "UNAUTHENTICATED":
        return TokenRejected(text, **common)
    if failure.grpc == "PERMISSION_DENIED" or status == 403:
        if account:
            return AccountFailed(text, hint=hint, **common)
        return Fatal(text, hint=hint, **common)
    transient = ("INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED")
    if (
        failure.has("internalError")
        or failure.grpc in transient
        or (status >= 500 and status != 501)
    ):
        return Transient(text, **common)
    version = VERSION_PATH.match(path)
    if version and (status in (404, 501) or failure.grpc == "UNIMPLEMENTED") and not failure.codes:
        return Fatal(
            f"Google Ads answered HTTP {status} for API {version.group(1)}: "
            "the version is probably sunset",
            hint=f"set CMIS_GOOGLE_API_VERSION to a live version (default {API_VERSION})",
            **common,
        )
    return Fatal(text, **common)


def classify(response: httpx2.Response) -> PlatformError | None:
    """The cmis error a Google Ads (or Google OAuth) answer means, or ``None`` on success."""
    if response.is_success:
        return None
    try:
        path = response.request.url.path
    except RuntimeError:
        path = ""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    return error_from_body(
        body, status=response.status_code, path=path, retry_header=retry_after(response)
    )
