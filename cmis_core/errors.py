"""The one exception tree of cmis. Plugins raise only these.

::

    CmisError                       every error cmis raises on purpose
    ├── ConfigurationError          a setting is missing or wrong (exit 2)
    │   ├── MissingSetting          a required CMIS_* variable is not set
    │   ├── UndecryptableCredential no configured key opens a stored credential
    │   ├── SunsetApiVersion        the configured API version is past its sunset date
    │   └── SchemaOutOfDate         the database schema needs `cmis db upgrade`
    ├── UsageError                  bad input from a user or a caller (exit 2)
    │   └── UnknownOrganization     no organisation with that slug
    ├── PluginError                 a plugin problem the user must resolve (exit 2)
    │   ├── UnknownPlatform         no installed plugin provides that platform
    │   ├── PluginConflict          two distributions claim one platform
    │   └── PluginLoadFailed        the plugin for that platform failed to import
    ├── LockHeld                    another run holds the lock (exit 75)
    ├── PlatformError               a platform answered with an error
    │   ├── ReauthRequired          the grant is gone; the user must reconnect (exit 77)
    │   │   └── TokenRejected       the access token was refused: refresh once, then reconnect
    │   ├── RateLimited             slow down; ``retry_after`` says how long
    │   ├── Transient               try again later (5xx, timeouts, code 1/2 on Meta)
    │   ├── SplitRequired           the request asks for too much data; ask for less
    │   ├── AccountFailed           fatal for one ad account; the others go on
    │   └── Fatal                   a permanent error for this request
    ├── OAuthFlowError              a connect flow failed (bad state, refused code, ...)
    └── WebhookRejected             a delivery is not accepted (carries an HTTP status)
        └── SignatureInvalid        missing or wrong signature, or a stale timestamp

Messages never contain a token, code, state or other secret: build them from ids.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit-code contract of every `cmis` command (sysexits where one fits)."""

    OK = 0
    PARTIAL = 1  # some work failed
    USAGE = 2  # usage or configuration error
    SOFTWARE = 70  # an unexpected error (a bug)
    TEMPFAIL = 75  # nothing done: another run holds the lock
    NOPERM = 77  # an integration needs re-authorisation

    @classmethod
    def combine(cls, *codes: ExitCode) -> ExitCode:
        """The code that wins when several apply: 70 > 2 > 1 > 77 > 75 > 0."""
        order = [cls.SOFTWARE, cls.USAGE, cls.PARTIAL, cls.NOPERM, cls.TEMPFAIL, cls.OK]
        present = set(codes)
        for code in order:
            if code in present:
                return code
        return cls.OK


class CmisError(Exception):
    """Every error cmis raises on purpose."""

    exit_code: ExitCode = ExitCode.SOFTWARE
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        """The one-line message, without the hint."""
        return str(self.args[0]) if self.args else type(self).__name__


class ConfigurationError(CmisError):
    """A setting is missing or wrong."""

    exit_code = ExitCode.USAGE


class MissingSetting(ConfigurationError):
    """A required CMIS_* variable is not set."""

    def __init__(self, variable: str, why: str | None = None) -> None:
        self.variable = variable
        text = f"{variable} is not set"
        super().__init__(f"{text}: {why}" if why else text)


class UndecryptableCredential(ConfigurationError):
    """No configured key opens a stored credential (never a reason to re-authorise)."""


class SunsetApiVersion(ConfigurationError):
    """The configured API version is past its sunset date."""


class SchemaOutOfDate(ConfigurationError):
    """The database schema is older than this cmis; run `cmis db upgrade`."""


class UsageError(CmisError):
    """Bad input from a user or a caller."""

    exit_code = ExitCode.USAGE


class UnknownOrganization(UsageError):
    """No organisation with that slug."""


class PluginError(CmisError):
    """A plugin problem the user must resolve."""

    exit_code = ExitCode.USAGE


class UnknownPlatform(PluginError):
    """No installed plugin provides that platform."""


class PluginConflict(PluginError):
    """Two distributions claim one platform; it is disabled until one is removed."""

    def __init__(self, platform: str, distributions: tuple[str, ...]) -> None:
        self.platform = platform
        self.distributions = distributions
        names = " and ".join(distributions)
        super().__init__(
            f"platform {platform!r} is claimed by {names}; it is disabled",
            hint="uninstall one of them, or disable one with CMIS_PLUGINS_DISABLED",
        )


class PluginLoadFailed(PluginError):
    """The plugin that provides a platform failed to import."""


class LockHeld(CmisError):
    """Another run holds the lock; nothing was done."""

    exit_code = ExitCode.TEMPFAIL


class PlatformError(CmisError):
    """A platform answered with an error."""

    exit_code = ExitCode.PARTIAL

    def __init__(
        self,
        message: str,
        *,
        platform: str | None = None,
        code: str | int | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.platform = platform
        self.code = code
        self.status = status


class ReauthRequired(PlatformError):
    """The grant is gone (expired, revoked, password changed); the user must reconnect."""

    exit_code = ExitCode.NOPERM


class TokenRejected(ReauthRequired):
    """The access token was refused (expired, invalid): refresh once and retry, else reconnect."""


class RateLimited(PlatformError):
    """The platform asks us to slow down; ``retry_after`` is its wait in seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        platform: str | None = None,
        code: str | int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, platform=platform, code=code, status=status)
        self.retry_after = retry_after


class Transient(PlatformError):
    """A failure that may pass: try again later."""


class SplitRequired(PlatformError):
    """The request asks for too much data; split it (fewer days or ids) and retry."""


class AccountFailed(PlatformError):
    """Fatal for one ad account (no permission, not found); the other accounts go on."""


class Fatal(PlatformError):
    """A permanent error for this request."""


class OAuthFlowError(CmisError):
    """A connect flow failed: bad or reused state, refused code, user denied access."""

    exit_code = ExitCode.USAGE


class WebhookRejected(CmisError):
    """A webhook delivery is not accepted; ``status`` is the HTTP answer, ``reason`` a label."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, status: int = 400, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class SignatureInvalid(WebhookRejected):
    """The signature is missing or wrong, or its signed timestamp is out of tolerance."""

    def __init__(self, message: str, *, reason: str = "bad_signature") -> None:
        super().__init__(message, status=401, reason=reason)
