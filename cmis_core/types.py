"""Value objects shared by the core and the plugins (attrs, frozen, keyword-only).

Secrets are ``repr=False`` fields: a repr, a log line or an exception built from these
objects never shows a token. Change a value with :func:`attrs.evolve`; convert with the
named constructors (``from_json``, ``to_json``), never ``Cls(**row)``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import httpx2
    import structlog

    from cmis_core.errors import PlatformError
    from cmis_core.settings import PlatformSettings

_SLUG = attrs.validators.matches_re(r"^[a-z][a-z0-9_]{1,31}$")


def utcnow() -> dt.datetime:
    """Now, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def _tuple_of_str(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    return tuple(str(v) for v in value)


def _capabilities(value: Iterable[Capability | str]) -> frozenset[Capability]:
    return frozenset(Capability(v) for v in value)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value


class Capability(enum.StrEnum):
    """What a platform plugin can do; shown by `cmis plugins list`."""

    OAUTH2 = "oauth2"
    OAUTH2_PKCE = "oauth2_pkce"
    OAUTH1 = "oauth1"
    TOKEN_EXCHANGE = "token_exchange"  # e.g. Meta's short-lived -> long-lived exchange
    STATIC_TOKEN = "static_token"  # connect with an existing token (--token-stdin)
    REFRESH = "refresh"
    REVOKE = "revoke"
    WEBHOOKS = "webhooks"
    LEADS = "leads"
    SYNC = "sync"
    SANDBOX = "sandbox"


class EntityKind(enum.StrEnum):
    """The common-model table a stream fills."""

    AD_ACCOUNT = "ad_account"
    CAMPAIGN = "campaign"
    AD_GROUP = "ad_group"
    AD = "ad"
    CREATIVE = "creative"
    DAILY_METRIC = "daily_metric"
    LEAD = "lead"


class EntityStatus(enum.StrEnum):
    """The normalised status of an entity, beside the platform's own."""

    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"
    DELETED = "deleted"


class IntegrationStatus(enum.StrEnum):
    """The state of an organisation's connection to a platform."""

    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    DISCONNECTED = "disconnected"


@attrs.frozen(kw_only=True)
class RateLimitPolicy:
    """How hard a platform may be called: a token bucket and the usage level to slow at.

    ``calls_per_second`` and ``burst`` describe a bucket for platforms without usage
    headers; ``slow_down_at`` is the usage fraction (0..1) reported in headers at which the
    governor starts spacing calls out.
    """

    calls_per_second: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    burst: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    slow_down_at: float = attrs.field(
        default=0.75, validator=[attrs.validators.gt(0), attrs.validators.le(1)]
    )
    max_concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))


@attrs.frozen(kw_only=True)
class UsageReading:
    """One usage level read from a response's headers, for the rate governor.

    ``scope`` names what the limit is counted on (``app``, ``account:act_1``, ...);
    ``used`` is the fraction of the budget consumed (0..1+); ``regain_after`` is the wait in
    seconds the platform announces, when it does.
    """

    scope: str
    used: float
    regain_after: float | None = None


@attrs.frozen(kw_only=True)
class Platform:
    """A platform a plugin provides: returned by ``cmis_platforms()``.

    ``classify`` maps an HTTP response to the typed error it means (or ``None`` when it is
    a success); ``usage`` reads the platform's usage headers for the rate governor. Both
    run inside the core's HTTP client for every response of this platform.
    """

    name: str = attrs.field(validator=_SLUG)
    display_name: str
    api_version: str
    base_url: str
    auth_url: str | None = None
    token_url: str | None = None
    api_version_sunset: dt.date | None = None
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    capabilities: frozenset[Capability] = attrs.field(default=frozenset(), converter=_capabilities)
    rate_limit: RateLimitPolicy = attrs.field(factory=RateLimitPolicy)
    classify: Callable[[httpx2.Response], PlatformError | None] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    usage: Callable[[httpx2.Response], list[UsageReading]] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    lookback_days: int = 28
    docs_url: str | None = None


@attrs.frozen(kw_only=True)
class TokenSet:
    """The credentials of one integration. Every secret field is hidden from repr."""

    access_token: str = attrs.field(repr=False)
    token_type: str = "bearer"
    refresh_token: str | None = attrs.field(default=None, repr=False)
    token_secret: str | None = attrs.field(default=None, repr=False)  # OAuth 1.0a
    expires_at: dt.datetime | None = attrs.field(default=None, validator=lambda _, __, v: _aware(v))
    refresh_expires_at: dt.datetime | None = attrs.field(
        default=None, validator=lambda _, __, v: _aware(v)
    )
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def expires_within(self, seconds: float, *, now: dt.datetime | None = None) -> bool:
        """True when the access token expires within ``seconds`` (never, if no expiry)."""
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or utcnow()) + dt.timedelta(seconds=seconds)

    def to_json(self) -> str:
        """Serialise for the vault (the only place that should ever hold this string)."""

        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return json.dumps(
            {
                "access_token": self.access_token,
                "token_type": self.token_type,
                "refresh_token": self.refresh_token,
                "token_secret": self.token_secret,
                "expires_at": iso(self.expires_at),
                "refresh_expires_at": iso(self.refresh_expires_at),
                "scopes": list(self.scopes),
                "extra": dict(self.extra),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        """The inverse of :meth:`to_json`."""
        data = json.loads(text)

        def when(value: str | None) -> dt.datetime | None:
            return dt.datetime.fromisoformat(value) if value else None

        return cls(
            access_token=data["access_token"],
            token_type=data.get("token_type") or "bearer",
            refresh_token=data.get("refresh_token"),
            token_secret=data.get("token_secret"),
            expires_at=when(data.get("expires_at")),
            refresh_expires_at=when(data.get("refresh_expires_at")),
            scopes=data.get("scopes") or (),
            extra=data.get("extra") or {},
        )


@attrs.frozen(kw_only=True)
class Identity:
    """Who granted the tokens, as the platform reports it."""

    user_id: str
    name: str | None = None
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    expires_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class AuthorizationRequest:
    """The first leg of a connect flow: where to send the user, and what to keep.

    ``verifier`` is the PKCE code verifier or the OAuth 1.0a request-token secret; it and
    ``extra`` are stored (encrypted) with the state and handed back to ``complete``.
    """

    url: str
    verifier: str | None = attrs.field(default=None, repr=False)
    extra: Mapping[str, str] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class PlatformContext:
    """What a plugin object receives for each call: the shared client and its settings."""

    platform: Platform
    settings: PlatformSettings
    http: httpx2.AsyncClient = attrs.field(repr=False)
    log: structlog.typing.FilteringBoundLogger = attrs.field(repr=False)

    def url(self, kind: str = "api") -> str:
        """The base URL for ``kind`` (api, auth, token), honouring ``CMIS_<P>_<KIND>_URL``."""
        default = {
            "api": self.platform.base_url,
            "auth": self.platform.auth_url or self.platform.base_url,
            "token": self.platform.token_url or self.platform.base_url,
        }.get(kind, self.platform.base_url)
        return self.settings.base_url(kind, default)


@attrs.frozen(kw_only=True)
class WebhookRequest:
    """A webhook delivery as received: raw bytes and lower-cased headers."""

    platform: str
    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)
    received_at: dt.datetime = attrs.field(factory=utcnow)

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return self.headers.get(name.lower())


@attrs.frozen(kw_only=True)
class WebhookResponse:
    """What to answer a handshake with."""

    status: int = 200
    body: bytes = b""
    media_type: str = "text/plain"


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """One event parsed from a delivery, routed to an organisation by ``route``.

    ``route_kind`` is ``page``, ``ad_account``, ``form`` or ``customer``; ``route_id`` the
    platform's id of that object. ``kind`` says what to do: ``lead`` (fetch and store),
    ``entity`` (update an entity or queue a targeted sync) or ``other`` (record only).
    """

    platform: str
    kind: str
    route_kind: str
    route_id: str
    external_id: str
    occurred_at: dt.datetime | None = None
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Event:
    """Base of the observer events. Observers may run more than once per ``event_id``."""

    event_id: str
    org: str
    platform: str
    occurred_at: dt.datetime = attrs.field(factory=utcnow)


@attrs.frozen(kw_only=True)
class IntegrationEvent(Event):
    """An integration was connected, is expiring or needs re-authorisation."""

    integration_id: str
    status: IntegrationStatus
    reason: str | None = None
    expires_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class SyncFinishedEvent(Event):
    """A sync of one integration finished (``ok`` False when any stream failed)."""

    integration_id: str
    run_id: str
    ok: bool
    records: int = 0
    streams: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class WebhookProcessedEvent(Event):
    """A webhook event was applied (a lead stored, an entity updated)."""

    delivery_id: str
    kind: str
    external_id: str
