"""API versions: quiet far from sunset, a warning within 30 days, then an error naming the
setting."""

from __future__ import annotations

import datetime as dt

import pytest
from structlog.testing import capture_logs

from cmis_core.errors import ConfigurationError, SunsetApiVersion
from cmis_core.settings import PlatformSettings
from cmis_core.sync.versions import check_api_version
from cmis_core.types import Platform

SUNSET = dt.date(2026, 6, 30)
PLATFORM = Platform(
    name="demo",
    display_name="Demo",
    api_version="v3",
    base_url="https://d.example",
    api_version_sunset=SUNSET,
)


def settings(**env: str) -> PlatformSettings:
    return PlatformSettings(platform="demo", environ={f"CMIS_DEMO_{k}": v for k, v in env.items()})


def test_far_from_sunset_is_quiet() -> None:
    assert check_api_version(PLATFORM, settings(), today=SUNSET - dt.timedelta(days=31)) is None


def test_within_30_days_warns_and_logs() -> None:
    with capture_logs() as logs:
        warning = check_api_version(PLATFORM, settings(), today=SUNSET - dt.timedelta(days=30))
    assert warning is not None and "CMIS_DEMO_API_VERSION" in warning and "30 days" in warning
    assert logs[0]["event"] == "sync.api_version_sunset_soon"


def test_sunset_version_is_a_configuration_error_naming_the_setting() -> None:
    with pytest.raises(SunsetApiVersion, match="CMIS_DEMO_API_VERSION") as caught:
        check_api_version(PLATFORM, settings(), today=SUNSET)
    assert isinstance(caught.value, ConfigurationError)


def test_another_version_chosen_is_left_to_the_plugin() -> None:
    assert check_api_version(PLATFORM, settings(API_VERSION="v4"), today=SUNSET) is None
