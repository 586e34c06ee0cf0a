"""A verified delivery as the inbox stores it, and the headers worth keeping."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping

import attrs

from cmis_core.redaction import is_sensitive_key

MAX_DEDUPE_KEY = 255
MAX_HEADERS = 40
MAX_HEADER_VALUE = 1024
# Transport noise: never useful to a parser, sometimes large.
DROPPED_HEADERS = frozenset(
    {
        "host",
        "connection",
        "content-length",
        "accept-encoding",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "expect",
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
    }
)


@functools.lru_cache(maxsize=512)
def _keep(name: str) -> bool:
    return name not in DROPPED_HEADERS and not is_sensitive_key(name)


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers stored with a delivery: no transport noise, nothing sensitive.

    Signatures, tokens, cookies and authorisation headers are dropped
    (:func:`cmis_core.redaction.is_sensitive_key`); so are values longer than
    :data:`MAX_HEADER_VALUE` and headers past the first :data:`MAX_HEADERS`.
    """
    kept: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if len(value) > MAX_HEADER_VALUE or not _keep(key):
            continue
        kept[key] = value
        if len(kept) >= MAX_HEADERS:
            break
    return kept


def bounded_key(key: str) -> str:
    """``key`` if it fits the inbox column, else a hash of it (still stable per delivery)."""
    if 0 < len(key) <= MAX_DEDUPE_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.frozen(kw_only=True)
class Delivery:
    """One verified delivery, ready to commit to the inbox (``body`` already masked)."""

    platform: str
    dedupe_key: str = attrs.field(converter=bounded_key)
    received_at: dt.datetime
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(repr=False)
