"""URL redaction for log lines (private: switch to ``cmis_core.redaction`` once it exists)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2

MASK = "***"

SECRET_PARAMS = frozenset(
    {
        "access_token",
        "appsecret_proof",
        "client_secret",
        "code",
        "state",
        "fb_exchange_token",
        "refresh_token",
        "input_token",
        "token",
        "api_key",
        "key",
        "password",
        "oauth_token",
        "oauth_verifier",
        "oauth_signature",
        "developer_token",
    }
)


def _redact_url(url: str | httpx2.URL) -> str:
    """``url`` with secret query values and any userinfo masked; safe for a log line.

    Meta's ``paging.next`` URLs carry the access token, so every URL this client logs goes
    through here. A URL that does not parse is replaced whole.
    """
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*,:"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
