"""Webhook deliveries as a platform sends them: signed bodies, and the subscription handshake.

The control API hands these to tests (``POST /_sandbox/webhooks/sample``) as JSON to be
POSTed to cmis: method, path, query, headers and the body (as text and base64).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import attrs

from cmis_core.webhooks.hmac import HmacScheme

SignatureMode = Literal["valid", "wrong", "none"]


@attrs.frozen(kw_only=True)
class Delivery:
    """One HTTP request the platform would send to cmis."""

    method: str = "POST"
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", "replace"),
            "body_b64": base64.b64encode(self.body).decode("ascii"),
        }


@attrs.frozen(kw_only=True)
class Handshake:
    """A subscription handshake request and the answer the platform expects."""

    request: Delivery
    status: int = 200
    body: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request.to_json(),
            "expect": {"status": self.status, "body": self.body.decode("utf-8", "replace")},
        }


class WebhookFaker(Protocol):
    """What a sandbox needs to fake its platform's webhooks."""

    timestamped: bool

    def delivery(
        self, *, signature: SignatureMode = "valid", timestamp_offset: float = 0.0, now: float
    ) -> Delivery:
        """A sample delivery; ``"wrong"`` signs with a wrong secret, ``"none"`` omits it."""
        ...

    def handshake(self) -> Handshake | None:
        """The platform's handshake, or ``None`` when it has none."""
        ...


class HmacWebhooks:
    """Deliveries signed with an :class:`HmacScheme` in one header (plus a timestamp header).

    ``sample(n)`` returns the JSON body of the ``n``-th sample delivery (a mapping, dumped
    compactly) or raw bytes.
    """

    def __init__(
        self,
        *,
        path: str,
        scheme: HmacScheme,
        secret: str,
        signature_header: str,
        sample: Callable[[int], Mapping[str, Any] | bytes],
        timestamp_header: str | None = None,
        handshake: Callable[[], Handshake] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        if scheme.timestamped and timestamp_header is None:
            raise ValueError("a timestamped scheme needs timestamp_header")
        self.path = path
        self.scheme = scheme
        self._secret = secret
        self.signature_header = signature_header
        self.timestamp_header = timestamp_header
        self._sample = sample
        self._handshake = handshake
        self.extra_headers = dict(extra_headers or {})
        self.timestamped = scheme.timestamped
        self._count = 0

    def delivery(
        self, *, signature: SignatureMode = "valid", timestamp_offset: float = 0.0, now: float
    ) -> Delivery:
        self._count += 1
        sample = self._sample(self._count)
        body = (
            sample
            if isinstance(sample, bytes)
            else json.dumps(sample, separators=(",", ":")).encode()
        )
        headers = {"content-type": "application/json", **self.extra_headers}
        timestamp = str(int(now + timestamp_offset)) if self.timestamped else None
        if timestamp is not None and self.timestamp_header:
            headers[self.timestamp_header.lower()] = timestamp
        if signature != "none":
            secret = self._secret if signature == "valid" else self._secret + "-wrong"
            headers[self.signature_header.lower()] = self.scheme.sign(
                secret, body, timestamp=timestamp
            )
        return Delivery(path=self.path, headers=headers, body=body)

    def handshake(self) -> Handshake | None:
        return self._handshake() if self._handshake else None
