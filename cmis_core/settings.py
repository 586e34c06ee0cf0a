"""Every CMIS_* setting, read in one place.

Core settings are declared in :data:`CORE_SETTINGS`; per-platform settings follow the
pattern ``CMIS_<P>_<NAME>`` where ``<P>`` is the platform slug in upper case and the names
are in :data:`PLATFORM_SETTINGS`. Plugins may read further ``CMIS_<P>_*`` variables through
:meth:`PlatformSettings.get` and :meth:`PlatformSettings.require`, and document them in
their README. ``docs/configuration.md`` documents every setting here (a test enforces it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from cmis_core.errors import ConfigurationError, MissingSetting


@attrs.frozen(kw_only=True)
class Setting:
    """One documented setting: its variable name, meaning, default and secrecy."""

    name: str
    help: str
    default: str | None = None
    secret: bool = False


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="CMIS_HOME", help="Folder for the SQLite database and key file.", default="~/.cmis"
    ),
    Setting(
        name="CMIS_DATABASE_URL",
        help="SQLAlchemy URL of the database the application uses.",
        default="sqlite:///$CMIS_HOME/cmis.db",
        secret=True,
    ),
    Setting(
        name="CMIS_DATABASE_MIGRATION_URL",
        help="URL used by `cmis db upgrade` (the table owner); defaults to CMIS_DATABASE_URL.",
        secret=True,
    ),
    Setting(
        name="CMIS_DATABASE_APP_ROLE",
        help="PostgreSQL role the application runs as; created by `cmis db upgrade`.",
        default="cmis_app",
    ),
    Setting(
        name="CMIS_DATABASE_POOL_SIZE",
        help="PostgreSQL connections kept open per process (as many again may overflow).",
        default="5",
    ),
    Setting(
        name="CMIS_SECRET_KEYS",
        help="Comma-separated token-encryption keys; the first encrypts, all decrypt.",
        secret=True,
    ),
    Setting(
        name="CMIS_PUBLIC_URL",
        help="Where `cmis serve` is reachable; OAuth redirect and webhook URLs are built from it.",
        default="http://127.0.0.1:8000",
    ),
    Setting(name="CMIS_ORG", help="Default organisation slug for --org."),
    Setting(
        name="CMIS_REDIS_URL",
        help="Redis shared by processes for rate-limit buckets and usage readings; "
        "without it each process keeps its own (needs the `redis` extra).",
        secret=True,
    ),
    Setting(
        name="CMIS_HTTP_TIMEOUT",
        help="Seconds an HTTP read, write or pool wait may take (connect: 10 s).",
        default="60",
    ),
    Setting(
        name="CMIS_HTTP_MAX_ATTEMPTS",
        help="Attempts per HTTP call (throttles and transient errors retried).",
        default="5",
    ),
    Setting(
        name="CMIS_HTTP_MAX_INLINE_WAIT",
        help="Longest wait (Retry-After, a platform's pause) slept in a worker; "
        "a longer one reschedules the work.",
        default="60",
    ),
    Setting(
        name="CMIS_SYNC_CONCURRENCY",
        help="Stream x account units a sync runs at once; default: the platform's max_concurrency.",
    ),
    Setting(
        name="CMIS_SYNC_MAX_PAGES_IN_FLIGHT",
        help="Pages read and not yet stored, at most.",
        default="16",
    ),
    Setting(
        name="CMIS_SYNC_MAX_ROWS_IN_FLIGHT",
        help="Rows read and not yet stored, at most (bounds a sync's memory; "
        "a bigger page waits until the queue is empty). Default 500 on SQLite, "
        "2000 on PostgreSQL.",
    ),
    Setting(
        name="CMIS_SYNC_BATCH_ROWS",
        help="Rows the sync writer gathers into one transaction at most.",
        default="5000",
    ),
    Setting(
        name="CMIS_SYNC_NEW_ACCOUNTS",
        help="`enabled` or `disabled`: whether ad accounts sync finds for the first time "
        "are read (see `cmis accounts`).",
        default="enabled",
    ),
    Setting(name="CMIS_CELERY_BROKER_URL", help="Celery broker (Redis or RabbitMQ).", secret=True),
    Setting(
        name="CMIS_CELERY_QUEUE",
        help="Queue `cmis run --executor celery` sends to and `cmis worker` reads; "
        "on Redis also the prefix of every broker key (`<queue>:`).",
        default="cmis",
    ),
    Setting(
        name="CMIS_CELERY_VISIBILITY_TIMEOUT",
        help="Seconds Redis waits before it delivers an unacknowledged task again "
        "(a lost worker's task); keep it above your longest sync.",
        default="3600",
    ),
    Setting(
        name="CMIS_RUN_CONCURRENCY",
        help="Integrations one `cmis run` or `cmis sync` works on at once.",
        default="2",
    ),
    Setting(
        name="CMIS_RUN_QUEUED_SECONDS",
        help="Seconds an enqueued integration stays marked, so no other `cmis run` enqueues "
        "it again; a lost task's work is enqueued again after it.",
        default="3600",
    ),
    Setting(
        name="CMIS_SYNC_LOCK_SECONDS",
        help="SQLite: seconds the per-integration lock lease lasts (renewed every third); "
        "a holder killed on this host frees it at once.",
        default="60",
    ),
    Setting(name="CMIS_PLUGINS", help="Comma-separated allow-list of plugins to load."),
    Setting(name="CMIS_PLUGINS_DISABLED", help="Comma-separated plugins never to load."),
    Setting(
        name="CMIS_PLUGINS_STRICT",
        help="Set to 1 to re-raise a plugin's import error (for plugin development).",
    ),
    Setting(name="CMIS_TRACE_PLUGINS", help="Set to 1 to log every hook call."),
    Setting(
        name="CMIS_OAUTH_STATE_TTL",
        help="Seconds an OAuth state stays valid.",
        default="600",
    ),
    Setting(
        name="CMIS_OAUTH_REDIRECT_URIS",
        help="Comma-separated extra redirect URIs accepted besides those of CMIS_PUBLIC_URL.",
    ),
    Setting(
        name="CMIS_TOKEN_REFRESH_WINDOW",
        help="Seconds before expiry at which the runner refreshes an access token.",
        default="600",
    ),
    Setting(
        name="CMIS_TOKEN_LEASE_SECONDS",
        help="Seconds a token refresh may hold its lease; a killed holder delays others this long.",
        default="30",
    ),
    Setting(
        name="CMIS_TOKEN_REFRESH_ATTEMPTS",
        help="Attempts at a refresh that fails transiently (5xx, 429, timeout), with backoff.",
        default="3",
    ),
    Setting(
        name="CMIS_TOKEN_EXPIRY_WARNING_DAYS",
        help="Days ahead that a grant which cannot renew itself fires the expiring observer.",
        default="7",
    ),
    Setting(
        name="CMIS_INBOX_RETENTION_DAYS",
        help="Days a processed webhook body is kept before it is purged.",
        default="30",
    ),
    Setting(
        name="CMIS_WEBHOOK_MAX_BODY",
        help="Largest webhook body accepted, in bytes (enforced while reading: 413).",
        default="1048576",
    ),
    Setting(
        name="CMIS_WEBHOOK_BODY_TIMEOUT",
        help="Seconds a sender may take to send a webhook body before a 408.",
        default="10",
    ),
    Setting(
        name="CMIS_WEBHOOK_COMMIT_TIMEOUT",
        help="Seconds a delivery may wait for the inbox commit before a 503 (platforms retry).",
        default="5",
    ),
    Setting(
        name="CMIS_WEBHOOK_MAX_ATTEMPTS",
        help="Processing attempts before an inbox row is parked as failed.",
        default="8",
    ),
    Setting(name="CMIS_LOG_FORMAT", help="`json` or `console`; default: console on a TTY."),
    Setting(name="CMIS_LOG_LEVEL", help="Minimum log level.", default="info"),
)

PLATFORM_SETTINGS: tuple[Setting, ...] = (
    Setting(name="CLIENT_ID", help="OAuth client id (app id, consumer key)."),
    Setting(name="CLIENT_SECRET", help="OAuth client secret (app secret).", secret=True),
    Setting(name="API_VERSION", help="API version; default: the plugin's current version."),
    Setting(name="LOOKBACK_DAYS", help="Days of daily metrics re-read on every sync."),
    Setting(name="API_URL", help="Base URL of the API host (`scheme://host[:port]`)."),
    Setting(name="AUTH_URL", help="Base URL of the authorization (consent) host."),
    Setting(name="TOKEN_URL", help="Base URL of the token host."),
)

PLATFORM_SLUGS = ("meta", "google", "tiktok", "linkedin", "twitter", "snapchat")


def _env_name(platform: str, name: str) -> str:
    return f"CMIS_{platform.upper()}_{name}"


def _check_base_url(variable: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{variable} must be scheme://host[:port], got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{variable} must be scheme://host[:port] with no path (no version), got {value!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _int(variable: str, value: str, *, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a whole number, got {value!r}") from None
    if number < minimum:
        if minimum == 0:
            raise ConfigurationError(f"{variable} must not be negative, got {value!r}")
        raise ConfigurationError(f"{variable} must be at least {minimum}, got {value!r}")
    return number


def _seconds(variable: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a number of seconds, got {value!r}") from None
    if not number > 0:
        raise ConfigurationError(f"{variable} must be more than 0 seconds, got {value!r}")
    return number


@attrs.frozen(kw_only=True)
class PlatformSettings:
    """The ``CMIS_<P>_*`` settings of one platform."""

    platform: str
    environ: Mapping[str, str] = attrs.field(repr=False)

    def get(self, name: str, default: str | None = None) -> str | None:
        """``CMIS_<P>_<name>``, or ``default`` when unset or empty."""
        value = self.environ.get(_env_name(self.platform, name), "")
        return value if value != "" else default

    def require(self, name: str, why: str | None = None) -> str:
        """``CMIS_<P>_<name>``; raises :class:`MissingSetting` naming it when unset."""
        value = self.get(name)
        if value is None:
            raise MissingSetting(_env_name(self.platform, name), why)
        return value

    def variable(self, name: str) -> str:
        """The environment variable that holds setting ``name``."""
        return _env_name(self.platform, name)

    @property
    def client_id(self) -> str:
        return self.require("CLIENT_ID", "needed to connect")

    @property
    def client_secret(self) -> str:
        return self.require("CLIENT_SECRET", "needed to connect")

    def api_version(self, default: str) -> str:
        return self.get("API_VERSION", default) or default

    def lookback_days(self, default: int) -> int:
        value = self.get("LOOKBACK_DAYS")
        return default if value is None else _int(self.variable("LOOKBACK_DAYS"), value)

    def base_url(self, kind: str, default: str) -> str:
        """The base URL override ``CMIS_<P>_<kind>_URL`` (API, AUTH, TOKEN, ...) or ``default``."""
        name = f"{kind.upper()}_URL"
        value = self.get(name)
        return default if value is None else _check_base_url(self.variable(name), value)


@attrs.frozen(kw_only=True)
class Settings:
    """The core settings, read once from the environment with :meth:`from_env`."""

    home: Path
    database_url: str = attrs.field(repr=False)
    migration_url: str = attrs.field(repr=False)
    database_url_explicit: bool
    app_role: str
    database_pool_size: int = 5
    secret_keys: tuple[str, ...] = attrs.field(repr=False)
    public_url: str
    org: str | None
    redis_url: str | None = attrs.field(repr=False)
    celery_broker_url: str | None = attrs.field(repr=False)
    plugins: tuple[str, ...] | None
    plugins_disabled: tuple[str, ...]
    plugins_strict: bool
    trace_plugins: bool
    oauth_state_ttl: int
    oauth_redirect_uris: tuple[str, ...]
    inbox_retention_days: int
    webhook_max_body: int = 1_048_576
    webhook_body_timeout: float = 10.0
    webhook_commit_timeout: float = 5.0
    webhook_max_attempts: int = 8
    log_format: str | None
    log_level: str
    environ: Mapping[str, str] = attrs.field(repr=False)
    access_log_every: int = 1
    token_refresh_window: int = 600
    token_lease_seconds: int = 30
    token_refresh_attempts: int = 3
    token_expiry_warning_days: int = 7

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every core setting from ``environ`` (default: the process environment)."""
        env = dict(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = env.get(name, "")
            return value if value != "" else None

        def csv(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in (get(name) or "").split(",") if p.strip())

        home = Path(get("CMIS_HOME") or "~/.cmis").expanduser()
        db_url = get("CMIS_DATABASE_URL")
        database_url = db_url or f"sqlite:///{home / 'cmis.db'}"
        public_url = (get("CMIS_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"CMIS_PUBLIC_URL must be an http(s) URL, got {public_url!r}")
        log_format = get("CMIS_LOG_FORMAT")
        if log_format not in (None, "json", "console"):
            raise ConfigurationError(f"CMIS_LOG_FORMAT must be json or console, got {log_format!r}")
        return cls(
            home=home,
            database_url=database_url,
            migration_url=get("CMIS_DATABASE_MIGRATION_URL") or database_url,
            database_url_explicit=db_url is not None,
            app_role=get("CMIS_DATABASE_APP_ROLE") or "cmis_app",
            database_pool_size=max(
                1, _int("CMIS_DATABASE_POOL_SIZE", get("CMIS_DATABASE_POOL_SIZE") or "5")
            ),
            secret_keys=csv("CMIS_SECRET_KEYS"),
            public_url=public_url,
            org=get("CMIS_ORG"),
            redis_url=get("CMIS_REDIS_URL"),
            celery_broker_url=get("CMIS_CELERY_BROKER_URL"),
            plugins=csv("CMIS_PLUGINS") if get("CMIS_PLUGINS") is not None else None,
            plugins_disabled=csv("CMIS_PLUGINS_DISABLED"),
            plugins_strict=(get("CMIS_PLUGINS_STRICT") or "") in ("1", "true", "yes"),
            trace_plugins=(get("CMIS_TRACE_PLUGINS") or "") in ("1", "true", "yes"),
            oauth_state_ttl=_int("CMIS_OAUTH_STATE_TTL", get("CMIS_OAUTH_STATE_TTL") or "600"),
            oauth_redirect_uris=csv("CMIS_OAUTH_REDIRECT_URIS"),
            inbox_retention_days=_int(
                "CMIS_INBOX_RETENTION_DAYS", get("CMIS_INBOX_RETENTION_DAYS") or "30"
            ),
            webhook_max_body=max(
                1, _int("CMIS_WEBHOOK_MAX_BODY", get("CMIS_WEBHOOK_MAX_BODY") or "1048576")
            ),
            webhook_body_timeout=_seconds(
                "CMIS_WEBHOOK_BODY_TIMEOUT", get("CMIS_WEBHOOK_BODY_TIMEOUT") or "10"
            ),
            webhook_commit_timeout=_seconds(
                "CMIS_WEBHOOK_COMMIT_TIMEOUT", get("CMIS_WEBHOOK_COMMIT_TIMEOUT") or "5"
            ),
            webhook_max_attempts=max(
                1, _int("CMIS_WEBHOOK_MAX_ATTEMPTS", get("CMIS_WEBHOOK_MAX_ATTEMPTS") or "8")
            ),
            log_format=log_format,
            log_level=(get("CMIS_LOG_LEVEL") or "info").lower(),
            environ=env,
            access_log_every=max(
                1, _int("CMIS_ACCESS_LOG_EVERY", get("CMIS_ACCESS_LOG_EVERY") or "1")
            ),
            token_refresh_window=_int(
                "CMIS_TOKEN_REFRESH_WINDOW", get("CMIS_TOKEN_REFRESH_WINDOW") or "600"
            ),
            token_lease_seconds=max(
                1, _int("CMIS_TOKEN_LEASE_SECONDS", get("CMIS_TOKEN_LEASE_SECONDS") or "30")
            ),
            token_refresh_attempts=max(
                1, _int("CMIS_TOKEN_REFRESH_ATTEMPTS", get("CMIS_TOKEN_REFRESH_ATTEMPTS") or "3")
            ),
            token_expiry_warning_days=_int(
                "CMIS_TOKEN_EXPIRY_WARNING_DAYS", get("CMIS_TOKEN_EXPIRY_WARNING_DAYS") or "7"
            ),
        )

    @property
    def is_sqlite(self) -> bool:
        """True when the application database is SQLite."""
        return self.database_url.startswith("sqlite")

    def whole_number(self, variable: str, default: int, *, minimum: int = 0) -> int:
        """A whole-number setting, ``default`` when unset or empty; a ``ConfigurationError``
        naming ``variable`` when it is not a whole number or is below ``minimum``."""
        raw = self.environ.get(variable, "")
        return default if raw == "" else _int(variable, raw, minimum=minimum)

    def platform(self, slug: str) -> PlatformSettings:
        """The ``CMIS_<P>_*`` settings of platform ``slug``."""
        return PlatformSettings(platform=slug, environ=self.environ)

    def require_org(self, org: str | None) -> str:
        """``org`` or ``CMIS_ORG``; a usage error when neither is given."""
        chosen = org or self.org
        if not chosen:
            raise MissingSetting("CMIS_ORG", "pass --org ORG or set CMIS_ORG")
        return chosen
