"""Redaction helpers: URLs, free text, nested mappings, control characters."""

from __future__ import annotations

import httpx2
import pytest

from cmis_core.redaction import (
    REDACTED,
    is_sensitive_key,
    neutralise,
    redact_mapping,
    redact_text,
    redact_url,
    redact_value,
)

SECRET = "S3CRET-value_123"


@pytest.mark.parametrize(
    "param",
    [
        "access_token",
        "code",
        "state",
        "client_secret",
        "fb_exchange_token",
        "refresh_token",
        "hub.verify_token",
        "crc_token",
        "appsecret_proof",
        "input_token",
        "oauth_token",
        "oauth_verifier",
        "ACCESS_TOKEN",
    ],
)
def test_redact_url_masks_each_sensitive_parameter(param: str) -> None:
    url = f"https://graph.example.com/v19.0/me?fields=id,name&{param}={SECRET}&limit=25"
    out = redact_url(url)
    assert SECRET not in out
    assert out == f"https://graph.example.com/v19.0/me?fields=id,name&{param}={REDACTED}&limit=25"


def test_redact_url_masks_fragments_passwords_and_encoded_names() -> None:
    url = f"https://user:{SECRET}@h.example/cb?hub%2Everify_token={SECRET}&hub.challenge=42#access_token={SECRET}&expires_in=60"
    out = redact_url(url)
    assert SECRET not in out
    assert out == (
        f"https://user:{REDACTED}@h.example/cb?hub%2Everify_token={REDACTED}"
        f"&hub.challenge=42#access_token={REDACTED}&expires_in=60"
    )


def test_redact_url_accepts_an_httpx_url_and_keeps_harmless_ones() -> None:
    url = httpx2.URL("https://api.example.com/x", params={"code": SECRET, "page": "2"})
    assert redact_url(url) == f"https://api.example.com/x?code={REDACTED}&page=2"
    plain = "https://api.example.com/x?error_code=190&status=active&code="
    assert redact_url(plain) == plain


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            f"GET /webhooks/meta?hub.mode=subscribe&hub.verify_token={SECRET}&hub.challenge=9",
            "hub.challenge=9",
        ),
        (
            f"grant_type=refresh_token&refresh_token={SECRET}&client_secret={SECRET}",
            "grant_type=refresh_token",
        ),
        (
            f'{{"access_token": "{SECRET}", "token_type": "bearer", "expires_in": 3600}}',
            '"expires_in": 3600',
        ),
        (f"{{'refresh_token': '{SECRET}', 'error_code': 190}}", "'error_code': 190"),
        (f"Authorization: Bearer {SECRET}", "Authorization: "),
        (f"headers={{'authorization': 'Basic {SECRET}', 'accept': 'json'}}", "'accept': 'json'"),
        (f"sent bearer {SECRET} to the API", "to the API"),
        (
            f'OAuth oauth_consumer_key="ck", oauth_token="{SECRET}", oauth_signature="{SECRET}"',
            'oauth_consumer_key="ck"',
        ),
        (f"postgresql://cmis:{SECRET}@db:5432/cmis", "@db:5432/cmis"),
        (
            f"Client error '400 Bad Request' for url 'https://x.example/t?code={SECRET}'",
            "400 Bad Request",
        ),
    ],
)
def test_redact_text_masks_secrets_in_free_text(text: str, kept: str) -> None:
    out = redact_text(text)
    assert SECRET not in out
    assert kept in out
    assert REDACTED in out


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "sync.page_fetched status_code=200 error_code=17 encoded=yes page_token_count=3"
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "name",
    [
        "access_token",
        "Refresh-Token",
        "client_secret",
        "password",
        "Authorization",
        "Proxy-Authorization",
        "X-Hub-Signature-256",
        "x-api-key",
        "code",
        "state",
        "verify_token",
        "hub.verify_token",
        "crc_token",
        "google_key",
        "appsecret_proof",
        "Cookie",
        "token_secret",
    ],
)
def test_sensitive_keys(name: str) -> None:
    assert is_sensitive_key(name)


@pytest.mark.parametrize(
    "name",
    ["token_type", "status_code", "error_code", "status", "key_id", "state_id", "event", "url"],
)
def test_harmless_keys(name: str) -> None:
    assert not is_sensitive_key(name)


def test_redact_mapping_is_recursive_and_case_insensitive() -> None:
    body = {
        "data": [
            {"id": "1", "Access_Token": SECRET},
            {"id": "2", "nested": {"client_secret": SECRET}},
        ],
        "headers": {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        "paging": {
            "next": f"https://graph.example.com/v19.0/act_1/ads?access_token={SECRET}&after=x"
        },
        "token_type": "bearer",
        "refresh_token": None,
        "note": f"see {SECRET}",  # an unlabelled secret in prose cannot be known
    }
    out = redact_mapping(body)
    assert out["data"][0] == {"id": "1", "Access_Token": REDACTED}
    assert out["data"][1]["nested"] == {"client_secret": REDACTED}
    assert out["headers"] == {"Authorization": REDACTED, "Content-Type": "application/json"}
    assert (
        out["paging"]["next"]
        == f"https://graph.example.com/v19.0/act_1/ads?access_token={REDACTED}&after=x"
    )
    assert out["token_type"] == "bearer"
    assert out["refresh_token"] is None
    assert out["note"] == f"see {SECRET}"
    assert body["headers"]["Authorization"] == f"Bearer {SECRET}"  # the input is untouched


def test_redact_value_handles_objects_and_bytes() -> None:
    assert redact_value(b"access_token=" + SECRET.encode()) == f"access_token={REDACTED}"
    assert redact_value(ValueError(f"bad ?code={SECRET}")) == f"ValueError: bad ?code={REDACTED}"
    assert redact_value((1, f"Bearer {SECRET}")) == [1, f"Bearer {REDACTED}"]
    assert redact_value(httpx2.Headers({"authorization": SECRET})) == {"authorization": REDACTED}


def test_neutralise_escapes_line_breaks_and_control_characters() -> None:
    forged = 'ok\r\n{"event": "forged", "level": "info"}\x1b[31m\u2028end\x85'
    out = neutralise(forged)
    assert "\n" not in out
    assert "\r" not in out
    assert "\x1b" not in out
    assert "\u2028" not in out
    assert out == 'ok\\r\\n{"event": "forged", "level": "info"}\\x1b[31m\\u2028end\\x85'
    assert len(out.splitlines()) == 1
