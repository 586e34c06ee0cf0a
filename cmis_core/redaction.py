"""Redaction: keep tokens, secrets, codes and states out of logs, errors and output.

Reusable pieces, used by the log pipeline (:mod:`cmis_core.logs`), the HTTP client and
the services:

- :func:`redact_url` masks sensitive query (and fragment) parameters and URL passwords;
- :func:`redact_text` does the same inside free text (URLs, paths, form bodies, quoted
  ``"key": "value"`` pairs, ``Authorization`` headers, ``Bearer`` tokens);
- :func:`redact_mapping` masks the values of sensitive keys in nested mappings and lists
  (headers, parameters, JSON bodies) and runs :func:`redact_text` over the rest;
- :func:`is_sensitive_key` is the key rule they share;
- :func:`neutralise` escapes CR, LF and other control characters, so a value cannot
  forge a log line.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# A key is sensitive when, lower-cased with '-' as '_', it contains one of these ...
SENSITIVE_KEY_PARTS: tuple[str, ...] = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "signature",
    "private_key",
)
# ... or is one of these ...
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "code",
        "state",
        "key",
        "google_key",
        "appsecret_proof",
        "oauth_verifier",
        "code_verifier",
        "verifier",
        "session",
        "dsn",
        "database_url",
        "migration_url",
        "client_assertion",
    }
)
# ... and is not one of these (names that merely mention a token).
NOT_SENSITIVE_KEYS: frozenset[str] = frozenset(
    {"token_type", "token_url", "token_endpoint", "tokens_expire_at"}
)

# Query, fragment and form parameters whose values are masked wherever they appear.
SENSITIVE_PARAMS: tuple[str, ...] = (
    "access_token",
    "refresh_token",
    "id_token",
    "input_token",
    "fb_exchange_token",
    "oauth_token",
    "oauth_verifier",
    "oauth_signature",
    "oauth_token_secret",
    "hub.verify_token",
    "verify_token",
    "crc_token",
    "client_secret",
    "client_assertion",
    "appsecret_proof",
    "code_verifier",
    "google_key",
    "api_key",
    "password",
    "signature",
    "token",
    "code",
    "state",
    "key",
)
_PARAM_SET = frozenset(SENSITIVE_PARAMS)

_PARAMS = "|".join(re.escape(p) for p in sorted(SENSITIVE_PARAMS, key=len, reverse=True))
# name=value in a query string, a fragment, a form body or an OAuth 1.0a header.
_PARAM_RE = re.compile(rf"(?i)(?<![\w.\-%])({_PARAMS})=(\"[^\"]*\"|'[^']*'|[^&\s#\"'<>,;]*)")
# "key": "value" or 'key': 'value' (JSON, Python reprs) for any sensitive key.
_QUOTED_RE = re.compile(r"""(["'])([\w.\-]{1,64})\1(\s*[:=]\s*)(["'])((?:\\.|(?!\4)[^\\])*)\4""")
# An Authorization header written out as text.
_AUTH_HEADER_RE = re.compile(
    r"""(?i)\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)([^"'\r\n,}\]]+)"""
)
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):([^@/\s]+)@")
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_ESCAPES = {"\r": "\\r", "\n": "\\n"}


def is_sensitive_key(name: str) -> bool:
    """True when a field, header or parameter called ``name`` holds a secret."""
    key = name.strip().lower().replace("-", "_")
    if key.startswith("hub."):
        key = key[4:]
    if key in NOT_SENSITIVE_KEYS:
        return False
    return key in SENSITIVE_KEYS or any(part in key for part in SENSITIVE_KEY_PARTS)


def _mask_param(match: re.Match[str]) -> str:
    value = match.group(2)
    if value.startswith(("'", '"')):
        return f"{match.group(1)}={value[0]}{REDACTED}{value[0]}"
    return f"{match.group(1)}={REDACTED}" if value else match.group(0)


def _mask_quoted(match: re.Match[str]) -> str:
    quote, key, sep, vquote, _ = match.groups()
    if not is_sensitive_key(key):
        return match.group(0)
    return f"{quote}{key}{quote}{sep}{vquote}{REDACTED}{vquote}"


def redact_text(text: str) -> str:
    """``text`` with secrets masked: URL parameters, quoted pairs, auth headers, passwords."""
    if not text:
        return text
    text = _USERINFO_RE.sub(rf"\1:{REDACTED}@", text)
    text = _AUTH_HEADER_RE.sub(rf"\1{REDACTED}", text)
    text = _BEARER_RE.sub(rf"\1 {REDACTED}", text)
    text = _QUOTED_RE.sub(_mask_quoted, text)
    return _PARAM_RE.sub(_mask_param, text)


def _redact_pairs(part: str) -> str:
    out = []
    for piece in part.split("&"):
        name, eq, value = piece.partition("=")
        plain = name.replace("%2E", ".").replace("%2e", ".").lower()
        if eq and value and (plain in _PARAM_SET or is_sensitive_key(plain)):
            out.append(f"{name}={REDACTED}")
        else:
            out.append(piece)
    return "&".join(out)


def redact_url(url: object) -> str:
    """A URL (``str`` or ``httpx2.URL``) as text, safe to log.

    Sensitive query and fragment parameters are masked (``access_token``, ``code``,
    ``state``, ``client_secret``, ``hub.verify_token``, ...; see :data:`SENSITIVE_PARAMS`)
    and so is a password in the user-info part. Everything else is kept as written.
    """
    text = str(url)
    text = _USERINFO_RE.sub(rf"\1:{REDACTED}@", text)
    base, hash_, fragment = text.partition("#")
    path, question, query = base.partition("?")
    if question:
        base = f"{path}?{_redact_pairs(query)}"
    if hash_:
        return f"{base}#{_redact_pairs(fragment)}"
    return base


def redact_value(value: Any) -> Any:
    """``value`` with secrets masked: mappings and sequences recursively, text by content.

    Numbers, booleans and ``None`` pass unchanged; dates become ISO strings; any other
    object becomes its (redacted) ``repr``, or ``str`` for an exception.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return redact_value(value.value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return redact_text(repr(value))


def redact_mapping(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with sensitive keys' values masked, nested levels included."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key)
        if value is not None and is_sensitive_key(name):
            out[name] = REDACTED
        else:
            out[name] = redact_value(value)
    return out


def neutralise(text: str) -> str:
    """``text`` with CR, LF and other control characters escaped (``\\r``, ``\\n``, ``\\x1b``)."""

    def escape(match: re.Match[str]) -> str:
        char = match.group(0)
        if char in _ESCAPES:
            return _ESCAPES[char]
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL_RE.sub(escape, text)
