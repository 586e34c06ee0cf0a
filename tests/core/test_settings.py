"""Settings: defaults, validation, errors naming the variable, and their documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmis_core.errors import ConfigurationError, ExitCode, MissingSetting
from cmis_core.settings import CORE_SETTINGS, PLATFORM_SETTINGS, Settings

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"CMIS_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'cmis.db'}"
    assert settings.is_sqlite and not settings.database_url_explicit
    assert settings.migration_url == settings.database_url
    assert settings.oauth_state_ttl == 600
    assert settings.plugins is None and settings.plugins_disabled == ()


def test_home_defaults_to_dot_cmis() -> None:
    assert Settings.from_env({}).home == Path("~/.cmis").expanduser()


def test_missing_platform_setting_names_the_variable() -> None:
    meta = Settings.from_env({}).platform("meta")
    with pytest.raises(MissingSetting) as caught:
        _ = meta.client_id
    assert caught.value.variable == "CMIS_META_CLIENT_ID"
    assert "CMIS_META_CLIENT_ID" in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_base_url_override_and_validation() -> None:
    meta = Settings.from_env({"CMIS_META_API_URL": "http://127.0.0.1:9001/"}).platform("meta")
    assert meta.base_url("api", "https://graph.facebook.com") == "http://127.0.0.1:9001"
    assert meta.base_url("token", "https://graph.facebook.com") == "https://graph.facebook.com"
    bad = Settings.from_env({"CMIS_META_API_URL": "http://host/v27.0"}).platform("meta")
    with pytest.raises(ConfigurationError, match="CMIS_META_API_URL"):
        bad.base_url("api", "https://graph.facebook.com")
    worse = Settings.from_env({"CMIS_GOOGLE_TOKEN_URL": "ftp://x"}).platform("google")
    with pytest.raises(ConfigurationError, match="CMIS_GOOGLE_TOKEN_URL"):
        worse.base_url("token", "https://oauth2.googleapis.com")


def test_numbers_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="CMIS_OAUTH_STATE_TTL"):
        Settings.from_env({"CMIS_OAUTH_STATE_TTL": "ten"})
    lookback = Settings.from_env({"CMIS_META_LOOKBACK_DAYS": "-3"}).platform("meta")
    with pytest.raises(ConfigurationError, match="CMIS_META_LOOKBACK_DAYS"):
        lookback.lookback_days(28)
    assert Settings.from_env({}).platform("meta").lookback_days(28) == 28


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {
            "CMIS_SECRET_KEYS": "k-canary-1",
            "CMIS_DATABASE_URL": "postgresql://u:pw-canary@h/db",
            "CMIS_META_CLIENT_SECRET": "cs-canary",
        }
    )
    text = repr(settings) + repr(settings.platform("meta"))
    assert "canary" not in text


def test_require_org() -> None:
    assert Settings.from_env({"CMIS_ORG": "acme"}).require_org(None) == "acme"
    assert Settings.from_env({"CMIS_ORG": "acme"}).require_org("other") == "other"
    with pytest.raises(MissingSetting, match="--org"):
        Settings.from_env({}).require_org(None)


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [s.name for s in CORE_SETTINGS if f"`{s.name}`" not in text]
    missing += [s.name for s in PLATFORM_SETTINGS if f"`CMIS_<P>_{s.name}`" not in text]
    assert missing == []


def test_whole_number_settings_default_and_refuse_naming_the_variable() -> None:
    from cmis_core.errors import ConfigurationError
    from cmis_core.settings import Settings

    settings = Settings.from_env(
        {"CMIS_HOME": "/tmp/cmis-x", "CMIS_RUN_CONCURRENCY": "0", "CMIS_SYNC_BATCH_ROWS": "x"}
    )
    assert settings.whole_number("CMIS_SYNC_CONCURRENCY", 7, minimum=1) == 7
    with pytest.raises(ConfigurationError, match="CMIS_RUN_CONCURRENCY must be at least 1"):
        settings.whole_number("CMIS_RUN_CONCURRENCY", 2, minimum=1)
    with pytest.raises(ConfigurationError, match="CMIS_SYNC_BATCH_ROWS must be a whole number"):
        settings.whole_number("CMIS_SYNC_BATCH_ROWS", 5000, minimum=1)
