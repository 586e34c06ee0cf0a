"""The plugin's own ``CMIS_META_*`` settings, read and checked in one place (see README)."""

from __future__ import annotations

import json

import attrs

from cmis_core.errors import ConfigurationError
from cmis_core.settings import PlatformSettings

# Action types counted as conversions by default: Meta's de-duplicated "omni" purchase and
# registration counts and all leads (on-Facebook and pixel). Overlapping types (``purchase``
# beside ``omni_purchase``) would count the same conversion twice.
DEFAULT_CONVERSION_ACTION_TYPES = ("omni_purchase", "lead", "omni_complete_registration")
DEFAULT_ATTRIBUTION_WINDOWS = ("7d_click", "1d_view")
KNOWN_WINDOWS = frozenset(
    {"1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view", "1d_ev"}
)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def _number(settings: PlatformSettings, name: str, default: float, *, minimum: float = 0) -> float:
    raw = settings.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{settings.variable(name)} must be a number, got {raw!r}"
        ) from None
    if value < minimum:
        raise ConfigurationError(
            f"{settings.variable(name)} must be at least {minimum}, got {raw!r}"
        )
    return value


@attrs.frozen(kw_only=True)
class MetaConfig:
    """Everything the Meta plugin reads beyond the core's per-platform settings."""

    scopes: tuple[str, ...] = ()
    conversion_action_types: tuple[str, ...] = DEFAULT_CONVERSION_ACTION_TYPES
    attribution_windows: tuple[str, ...] = DEFAULT_ATTRIBUTION_WINDOWS
    expiry_warning_days: int = 7
    history_days: int = 90
    days_per_job: int = 7
    report_runs_at_once: int = 3
    report_poll_seconds: float = 2.0
    report_timeout_seconds: float = 1800.0
    page_size: int = 500
    insights_page_size: int = 1000

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> MetaConfig:
        """Read and validate every ``CMIS_META_*`` plugin setting (unset: the defaults)."""
        windows = _csv(settings.get("ATTRIBUTION_WINDOWS")) or DEFAULT_ATTRIBUTION_WINDOWS
        unknown = [w for w in windows if w not in KNOWN_WINDOWS]
        if unknown:
            raise ConfigurationError(
                f"{settings.variable('ATTRIBUTION_WINDOWS')}: unknown window {unknown[0]!r}; "
                f"known: {', '.join(sorted(KNOWN_WINDOWS))}"
            )
        return cls(
            scopes=_csv(settings.get("SCOPES")),
            conversion_action_types=_csv(settings.get("CONVERSION_ACTION_TYPES"))
            or DEFAULT_CONVERSION_ACTION_TYPES,
            attribution_windows=windows,
            expiry_warning_days=int(_number(settings, "EXPIRY_WARNING_DAYS", 7)),
            history_days=int(_number(settings, "HISTORY_DAYS", 90, minimum=1)),
            days_per_job=int(_number(settings, "DAYS_PER_JOB", 7, minimum=1)),
            report_runs_at_once=int(_number(settings, "REPORT_RUNS_AT_ONCE", 3, minimum=1)),
            report_poll_seconds=_number(settings, "REPORT_POLL_SECONDS", 2.0),
            report_timeout_seconds=_number(settings, "REPORT_TIMEOUT_SECONDS", 1800.0, minimum=1),
            page_size=int(_number(settings, "PAGE_SIZE", 500, minimum=1)),
            insights_page_size=int(_number(settings, "INSIGHTS_PAGE_SIZE", 1000, minimum=1)),
        )

    @property
    def windows_json(self) -> str:
        """``action_attribution_windows`` as Graph takes it: a JSON list."""
        return json.dumps(list(self.attribution_windows))

    @property
    def attribution_setting(self) -> str:
        """What each metrics row records as its attribution setting (``7d_click,1d_view``)."""
        return ",".join(self.attribution_windows)
