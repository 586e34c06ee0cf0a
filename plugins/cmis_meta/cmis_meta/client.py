"""The Graph API in one place: the platform record, URLs, error mapping, usage headers, money.

Errors arrive in Graph's envelope, usually with HTTP 400::

    {"error": {"message": "...", "type": "OAuthException", "code": 190,
               "error_subcode": 463, "fbtrace_id": "..."}}

:func:`classify` is the one place those answers become cmis errors (the core's HTTP client
and the paging loops call it for every response); :func:`usage` reads the four usage
headers for the rate governor. Error messages are redacted: Graph echoes a malformed token
back in its message ("Malformed access token EAA..."), which must never reach a log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Generator, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import attrs
import httpx2

from cmis_core import Capability, Platform, PlatformContext, RateLimitPolicy, UsageReading
from cmis_core.errors import (
    AccountFailed,
    Fatal,
    PlatformError,
    RateLimited,
    ReauthRequired,
    SplitRequired,
    SunsetApiVersion,
    TokenRejected,
    Transient,
)

NAME = "meta"
API_VERSION = "v27.0"
GRAPH_URL = "https://graph.facebook.com"
WWW_URL = "https://www.facebook.com"

# Marketing API versions and their expiration dates (Meta's version table, November 2026;
# None: "TBD"). The default's sunset goes on the platform record.
SUNSETS: Mapping[str, dt.date | None] = {
    "v27.0": None,
    "v26.0": None,
    "v25.0": dt.date(2027, 2, 23),
    "v24.0": dt.date(2026, 11, 10),
    "v23.0": dt.date(2026, 6, 9),
    "v22.0": dt.date(2026, 2, 19),
    "v21.0": dt.date(2025, 9, 9),
}

SCOPES = (
    "ads_read",
    "ads_management",
    "leads_retrieval",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_metadata",
    "pages_manage_ads",
    "business_management",
)

# Error codes (Graph "Handling Errors", Marketing API "Rate Limiting").
TOKEN_CODES = frozenset({102, 104, 190})
# 190 subcodes that mean the grant itself is gone: refreshing cannot help.
REAUTH_SUBCODES = frozenset({458, 459, 460, 464, 467})
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613}) | frozenset(range(80000, 80015))
APP_THROTTLE_CODES = frozenset({4, 341})
TOO_MUCH_DATA = (100, 1487534)
PERMISSION_CODES = frozenset({10}) | frozenset(range(200, 300))
DEFAULT_WAIT = {"app": 300.0, "account": 60.0}

CAPABILITIES: frozenset[Capability] = frozenset(
    {
        Capability.OAUTH2,
        Capability.TOKEN_EXCHANGE,
        Capability.STATIC_TOKEN,
        Capability.REVOKE,
        Capability.WEBHOOKS,
        Capability.LEADS,
        Capability.SYNC,
        Capability.SANDBOX,
    }
)

# Currencies whose budgets and bids Meta counts in whole units ("offset 1"); every other
# currency is counted in hundredths (Marketing API "Currency codes").
OFFSET_ONE = frozenset(
    {"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"}
)


def platform() -> Platform:
    """The ``meta`` platform record."""
    return Platform(
        name=NAME,
        display_name="Meta (Facebook and Instagram)",
        api_version=API_VERSION,
        api_version_sunset=SUNSETS[API_VERSION],
        base_url=GRAPH_URL,
        auth_url=WWW_URL,
        token_url=GRAPH_URL,
        scopes=SCOPES,
        capabilities=CAPABILITIES,
        rate_limit=RateLimitPolicy(
            calls_per_second=10, burst=50, slow_down_at=0.75, max_concurrency=4
        ),
        classify=classify,
        usage=usage,
        lookback_days=28,
        docs_url="https://developers.facebook.com/docs/marketing-api",
    )


# --------------------------------------------------------------------------- URLs


def version(ctx: PlatformContext, *, today: dt.date | None = None) -> str:
    """The Graph version in use (``CMIS_META_API_VERSION``); refuses one past its sunset."""
    chosen = ctx.settings.api_version(API_VERSION)
    if not re.fullmatch(r"v\d+\.\d+", chosen):
        raise SunsetApiVersion(
            f"{ctx.settings.variable('API_VERSION')} must look like v27.0, got {chosen!r}"
        )
    sunset = SUNSETS.get(chosen)
    if sunset is not None and (today or dt.datetime.now(dt.UTC).date()) >= sunset:
        raise SunsetApiVersion(
            f"Marketing API {chosen} expired on {sunset:%Y-%m-%d}",
            hint=f"unset {ctx.settings.variable('API_VERSION')} to use {API_VERSION}",
        )
    return chosen


def graph_url(ctx: PlatformContext, path: str = "") -> str:
    """``https://graph.facebook.com/v27.0/<path>``, honouring CMIS_META_API_URL and _API_VERSION."""
    return f"{ctx.url('api')}/{version(ctx)}/{path.lstrip('/')}"


# --------------------------------------------------------------------------- auth on requests


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """``hex(HMAC-SHA256(key=app secret, msg=access token))``, sent with every call."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def app_token(client_id: str, client_secret: str) -> str:
    """The app access token ``{app-id}|{app-secret}`` (debug_token, subscriptions)."""
    return f"{client_id}|{client_secret}"


class MetaAuth(httpx2.Auth):
    """``Authorization: Bearer`` plus ``appsecret_proof`` when the app secret is known."""

    def __init__(self, token: str, app_secret: str | None = None) -> None:
        self._token = token
        self._proof = appsecret_proof(token, app_secret) if app_secret else None

    def __repr__(self) -> str:
        return f"MetaAuth(<hidden>, proof={'yes' if self._proof else 'no'})"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        if self._proof is not None and "appsecret_proof" not in request.url.params:
            request.url = request.url.copy_add_param("appsecret_proof", self._proof)
        yield request


# --------------------------------------------------------------------------- errors

_SECRETISH = re.compile(r"\b(?:EAA[A-Za-z0-9]+|[A-Za-z0-9_\-|.]{32,})\b")


def redact(text: str) -> str:
    """``text`` with anything that looks like a token replaced by ``<redacted>``."""
    return _SECRETISH.sub("<redacted>", text)


@attrs.frozen(kw_only=True)
class GraphError:
    """The ``error`` object of a Graph answer (message already redacted and shortened)."""

    code: int | None
    subcode: int | None = None
    type: str | None = None
    message: str = ""
    is_transient: bool = False

    @classmethod
    def from_body(cls, body: Any) -> GraphError | None:
        """The error in a decoded Graph body, or ``None`` when it holds none."""
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            return None
        return cls(
            code=_int(error.get("code")),
            subcode=_int(error.get("error_subcode")),
            type=str(error["type"]) if error.get("type") else None,
            message=redact(str(error.get("message") or ""))[:200],
            is_transient=bool(error.get("is_transient")),
        )

    @property
    def label(self) -> str:
        codes = f"{self.code}" + (f"/{self.subcode}" if self.subcode else "")
        return f"Meta error {codes}: {self.message}" if self.message else f"Meta error {codes}"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _json_header(response: httpx2.Response, name: str) -> Any:
    raw = response.headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def wait_seconds(response: httpx2.Response) -> float | None:
    """How long Meta says to wait: BUC regain time (minutes), account reset, Retry-After."""
    waits: list[float] = []
    buc = _json_header(response, "x-business-use-case-usage")
    if isinstance(buc, Mapping):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                minutes = _number(entry.get("estimated_time_to_regain_access"))
                if minutes:
                    waits.append(minutes * 60)
    account = _json_header(response, "x-ad-account-usage")
    if isinstance(account, Mapping):
        reset = _number(account.get("reset_time_duration"))
        if reset:
            waits.append(reset)
    retry = _number(response.headers.get("retry-after"))
    if retry:
        waits.append(retry)
    return max(waits) if waits else None


def error_for(error: GraphError, *, status: int, wait: float | None = None) -> PlatformError:
    """The cmis error a Graph error means (the classification table, in one place)."""
    code, sub, text = error.code, error.subcode, error.label
    kw: dict[str, Any] = {"platform": NAME, "code": code, "status": status}
    if code in TOKEN_CODES or (error.type == "OAuthException" and code is None):
        if sub in REAUTH_SUBCODES:
            return ReauthRequired(text, **kw, hint="reconnect with `cmis connect meta`")
        return TokenRejected(text, **kw)
    if code in THROTTLE_CODES:
        scope = "app" if code in APP_THROTTLE_CODES else "account"
        return RateLimited(text, retry_after=wait or DEFAULT_WAIT[scope], **kw)
    if (code, sub) == TOO_MUCH_DATA or (code == 1 and "reduce the amount of data" in text):
        return SplitRequired(text, **kw)
    if code in (1, 2) or error.is_transient or status >= 500:
        return Transient(text, **kw)
    if code == 368:  # "temporarily blocked for policy violations: wait and retry"
        return Transient(text, **kw)
    if code in PERMISSION_CODES or (code == 100 and sub == 33):
        return AccountFailed(text, **kw)
    if code == 2635:
        return Fatal(
            text, **kw, hint="this Graph version is deprecated; unset CMIS_META_API_VERSION"
        )
    return Fatal(text, **kw)


def classify(response: httpx2.Response) -> PlatformError | None:
    """The cmis error a Graph answer means, or ``None`` for a success."""
    if response.is_success:
        return None
    status = response.status_code
    try:
        error = GraphError.from_body(response.json())
    except ValueError:
        error = None
    if error is not None:
        return error_for(error, status=status, wait=wait_seconds(response))
    text = f"Meta answered HTTP {status}"
    if status == 429:
        return RateLimited(text, retry_after=wait_seconds(response), platform=NAME, status=status)
    if status >= 500 or status == 408:
        return Transient(text, platform=NAME, status=status)
    if status == 401:
        return TokenRejected(text, platform=NAME, status=status)
    return Fatal(text, platform=NAME, status=status)


# --------------------------------------------------------------------------- usage headers

_ACCOUNT_IN_PATH = re.compile(r"/(act_\d+)(?:/|$)")


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _account_of(response: httpx2.Response) -> str | None:
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without a request (tests)
        return None
    found = _ACCOUNT_IN_PATH.search(path)
    return found.group(1) if found else None


def usage(response: httpx2.Response) -> list[UsageReading]:
    """Usage per scope from ``X-App-Usage``, ``X-Ad-Account-Usage``,
    ``X-Business-Use-Case-Usage`` and ``x-fb-ads-insights-throttle``.

    Scopes: ``app`` (the app's platform limit, shared by every organisation using it),
    ``insights:app`` (the app's insights throttle) and ``account:act_<id>`` (per ad account,
    from BUC entries of the ``ads_*`` types, the account usage and the insights throttle).
    Percentages become fractions; BUC's ``estimated_time_to_regain_access`` is in minutes,
    ``reset_time_duration`` in seconds (the time until the account's score is back to 0:
    a wait only when ``acc_id_util_pct`` is at 100). One reading per scope, the highest.
    """
    found: dict[str, tuple[float, float | None]] = {}

    def add(scope: str, percent: float | None, regain: float | None = None) -> None:
        if percent is None:
            return
        used, wait = found.get(scope, (0.0, None))
        waits = [w for w in (wait, regain) if w]
        found[scope] = (max(used, percent / 100), max(waits) if waits else None)

    app = _json_header(response, "x-app-usage")
    if isinstance(app, Mapping):
        values = [_number(app.get(k)) for k in ("call_count", "total_cputime", "total_time")]
        add("app", max((v for v in values if v is not None), default=None))
    account = _account_of(response)
    acc = _json_header(response, "x-ad-account-usage")
    if isinstance(acc, Mapping) and account:
        # reset_time_duration is how long until the score is back to 0, not a wait: it is one
        # only once the account is at its limit (otherwise every call would pause for it)
        percent = _number(acc.get("acc_id_util_pct"))
        blocked = percent is not None and percent >= 100
        add(
            f"account:{account}",
            percent,
            _number(acc.get("reset_time_duration")) if blocked else None,
        )
    throttle = _json_header(response, "x-fb-ads-insights-throttle")
    if isinstance(throttle, Mapping):
        add("insights:app", _number(throttle.get("app_id_util_pct")))
        if account:
            add(f"account:{account}", _number(throttle.get("acc_id_util_pct")))
    buc = _json_header(response, "x-business-use-case-usage")
    if isinstance(buc, Mapping):
        for object_id, entries in buc.items():
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, Mapping):
                    continue
                kind = str(entry.get("type") or "")
                values = [
                    _number(entry.get(k)) for k in ("call_count", "total_cputime", "total_time")
                ]
                minutes = _number(entry.get("estimated_time_to_regain_access"))
                scope = (
                    f"account:act_{str(object_id).removeprefix('act_')}"
                    if kind.startswith("ads_") or kind == "custom_audience"
                    else f"business:{kind or 'unknown'}:{object_id}"
                )
                add(
                    scope,
                    max((v for v in values if v is not None), default=None),
                    minutes * 60 if minutes else None,
                )
    return [UsageReading(scope=s, used=u, regain_after=w) for s, (u, w) in sorted(found.items())]


# --------------------------------------------------------------------------- money


def to_micros(amount: str | int | Decimal | None) -> int | None:
    """``"5339.5"`` -> ``5_339_500_000``: an amount in currency units, as Meta sends
    ``spend``, to integer micros (Decimal, never float)."""
    if amount is None or amount == "":
        return None
    if isinstance(amount, float):
        raise TypeError("money must not travel as float")
    try:
        micros = Decimal(str(amount)) * 1_000_000
    except InvalidOperation:
        raise Fatal(
            f"Meta sent an amount that is not a number: {amount!r}", platform=NAME
        ) from None
    if not micros.is_finite():
        raise Fatal(f"Meta sent an amount that is not finite: {amount!r}", platform=NAME)
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def minor_to_micros(amount: str | int | None, currency: str | None) -> int | None:
    """A budget or bid in the currency's minor units (``"5000"`` USD = 50.00) to micros."""
    micros = to_micros(amount)
    if micros is None:
        return None
    offset = 1 if (currency or "").upper() in OFFSET_ONE else 100
    return micros // offset
