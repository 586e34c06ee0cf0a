"""Pure pieces: Retry-After parsing, URL redaction, settings, scopes."""

from __future__ import annotations

import datetime as dt

import httpx2
import pytest

from cmis_core.errors import ConfigurationError
from cmis_core.http import HttpConfig, current_scope, http_scope, parse_retry_after, replace_token
from cmis_core.redaction import redact_url
from cmis_core.settings import Settings

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Sat, 28 Nov 2026 12:01:30 GMT", 90.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_redact_url_masks_every_secret_parameter_and_userinfo() -> None:
    url = (
        "https://user:pw@graph.example.test/v21.0/act_1/insights?fields=spend"
        "&access_token=EAAB&appsecret_proof=abc&client_secret=s&code=c&state=st"
        "&fb_exchange_token=f&refresh_token=r&input_token=i&after=cursor"
    )
    redacted = redact_url(url)
    for secret in ("EAAB", "=abc", "pw", "=s&", "=c&", "=st", "=f&", "=r&", "=i&"):
        assert secret not in redacted
    assert redacted.startswith("https://user:[redacted]@graph.example.test/v21.0/act_1/insights?")
    assert "fields=spend" in redacted
    assert redacted.endswith("&after=cursor")
    assert redact_url(httpx2.URL("https://x.test/a")) == "https://x.test/a"


def test_config_from_settings_and_its_errors() -> None:
    config = HttpConfig.from_settings(
        Settings.from_env(
            {
                "CMIS_HTTP_TIMEOUT": "12.5",
                "CMIS_HTTP_MAX_ATTEMPTS": "3",
                "CMIS_HTTP_MAX_INLINE_WAIT": "0",
                "CMIS_REDIS_URL": "redis://127.0.0.1:6379/0",
            }
        )
    )
    assert (config.timeout, config.max_attempts, config.max_inline_wait) == (12.5, 3, 0.0)
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert "6379" not in repr(config)
    for variable, value in [
        ("CMIS_HTTP_MAX_ATTEMPTS", "0"),
        ("CMIS_HTTP_MAX_ATTEMPTS", "2.5"),
        ("CMIS_HTTP_TIMEOUT", "fast"),
        ("CMIS_HTTP_MAX_INLINE_WAIT", "-1"),
    ]:
        with pytest.raises(ConfigurationError, match=variable):
            HttpConfig.from_settings(Settings.from_env({variable: value}))


def test_scopes_nest_and_keep_unnamed_fields() -> None:
    assert current_scope().account is None
    with http_scope(account="act_1") as outer:
        assert current_scope() is outer
        with http_scope(counters=None) as inner:
            assert inner.account == "act_1"
        with http_scope(account=None):
            assert current_scope().account is None
    assert current_scope().account is None


def test_replace_token_in_header_and_query() -> None:
    request = httpx2.Request(
        "POST",
        "https://x.test/a?access_token=old&x=1",
        headers={"Authorization": "Bearer old"},
        json={"k": "v"},
    )
    renewed = replace_token(request, "old", "new")
    assert renewed.headers["authorization"] == "Bearer new"
    assert renewed.url.params["access_token"] == "new" and renewed.url.params["x"] == "1"
    assert renewed.content == request.content
