"""Constant-time HMAC signature checks, for the webhook verifiers of every platform.

A :class:`HmacScheme` says how a platform signs: the hash, hex or base64, a prefix such as
``sha256=``, and whether a timestamp is signed with the body (and how old it may be).
``verify`` raises :class:`~cmis_core.errors.SignatureInvalid` with a ``reason`` label
(``missing_signature``, ``malformed_signature``, ``bad_signature``, ``missing_timestamp``,
``stale_timestamp``) and never says anything about the expected value. The same scheme
signs in sandboxes, so a plugin and its fake agree by construction::

    SCHEME = HmacScheme(prefix="sha256=", timestamped=True, tolerance=300)
    SCHEME.verify(secret, request.body, request.header("x-sig"), timestamp=request.header("x-ts"))

:class:`HmacVerifier` is a base for a platform's ``WebhookVerifier`` when its deliveries
carry one HMAC header (and optionally a timestamp header).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal

import attrs

from cmis_core.errors import SignatureInvalid, WebhookRejected

if TYPE_CHECKING:
    from cmis_core.settings import PlatformSettings
    from cmis_core.types import WebhookEvent, WebhookRequest, WebhookResponse

Encoding = Literal["hex", "base64"]


def dotted_message(body: bytes, timestamp: str | None) -> bytes:
    """``{timestamp}.{body}`` when a timestamp is signed (Stripe, Slack style), else the body."""
    return body if timestamp is None else timestamp.encode("ascii") + b"." + body


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


@attrs.frozen(kw_only=True)
class HmacScheme:
    """How one platform signs its deliveries."""

    algorithm: str = attrs.field(
        default="sha256", validator=attrs.validators.in_(hashlib.algorithms_guaranteed)
    )
    encoding: Encoding = "hex"
    prefix: str = ""
    timestamped: bool = False
    tolerance: float = 300.0
    message: Callable[[bytes, str | None], bytes] = attrs.field(default=dotted_message, eq=False)

    def digest(self, secret: str | bytes, body: bytes, *, timestamp: str | None = None) -> bytes:
        """The raw MAC over the signed message."""
        msg = self.message(body, timestamp if self.timestamped else None)
        return hmac.new(_as_bytes(secret), msg, self.algorithm).digest()

    def sign(self, secret: str | bytes, body: bytes, *, timestamp: str | None = None) -> str:
        """The signature header value for ``body`` (as the platform would send it)."""
        if self.timestamped and timestamp is None:
            raise ValueError("this scheme signs a timestamp; pass timestamp=")
        mac = self.digest(secret, body, timestamp=timestamp)
        text = mac.hex() if self.encoding == "hex" else base64.b64encode(mac).decode("ascii")
        return self.prefix + text

    def _decode(self, signature: str) -> bytes:
        if self.prefix:
            if not signature.startswith(self.prefix):
                raise SignatureInvalid(
                    "signature has the wrong prefix", reason="malformed_signature"
                )
            signature = signature[len(self.prefix) :]
        try:
            if self.encoding == "hex":
                return bytes.fromhex(signature.strip())
            return base64.b64decode(signature.strip(), validate=True)
        except (ValueError, binascii.Error):
            raise SignatureInvalid(
                "signature is not well formed", reason="malformed_signature"
            ) from None

    def check_timestamp(self, timestamp: str | None, *, now: float | None = None) -> None:
        """Raise unless ``timestamp`` (unix seconds) is within ``tolerance`` of now."""
        if timestamp is None or timestamp == "":
            raise SignatureInvalid("signed timestamp missing", reason="missing_timestamp")
        try:
            when = float(timestamp)
        except ValueError:
            raise SignatureInvalid(
                "signed timestamp malformed", reason="missing_timestamp"
            ) from None
        if abs((time.time() if now is None else now) - when) > self.tolerance:
            raise SignatureInvalid("signed timestamp out of tolerance", reason="stale_timestamp")

    def verify(
        self,
        secret: str | bytes,
        body: bytes,
        signature: str | None,
        *,
        timestamp: str | None = None,
        now: float | None = None,
    ) -> None:
        """Raise :class:`SignatureInvalid` unless ``signature`` signs ``body`` (and timestamp)."""
        if not signature:
            raise SignatureInvalid("signature missing", reason="missing_signature")
        given = self._decode(signature)
        if self.timestamped:
            self.check_timestamp(timestamp, now=now)
        expected = self.digest(secret, body, timestamp=timestamp)
        if not hmac.compare_digest(expected, given):
            raise SignatureInvalid("signature does not match", reason="bad_signature")


class HmacVerifier:
    """A ``WebhookVerifier`` for deliveries signed in one header with an :class:`HmacScheme`.

    Set ``platform``, ``scheme``, ``signature_header`` (and ``timestamp_header`` for a
    timestamped scheme) and ``secret_setting`` (read as ``CMIS_<P>_<secret_setting>``);
    implement :meth:`parse`. Override :meth:`handshake`, :meth:`dedupe_key` or :meth:`mask`
    when the platform needs it.
    """

    platform: str
    scheme: ClassVar[HmacScheme] = HmacScheme()
    signature_header: ClassVar[str]
    timestamp_header: ClassVar[str | None] = None
    secret_setting: ClassVar[str] = "WEBHOOK_SECRET"

    def handshake(
        self, request: WebhookRequest, settings: PlatformSettings
    ) -> WebhookResponse | None:
        return None

    def verify(self, request: WebhookRequest, settings: PlatformSettings) -> None:
        if request.method.upper() != "POST":
            raise WebhookRejected("deliveries are POSTed", status=405, reason="bad_method")
        secret = settings.require(self.secret_setting, "needed to verify webhook signatures")
        timestamp = request.header(self.timestamp_header) if self.timestamp_header else None
        self.scheme.verify(
            secret, request.body, request.header(self.signature_header), timestamp=timestamp
        )

    def dedupe_key(self, request: WebhookRequest) -> str:
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    def parse(self, body: bytes) -> list[WebhookEvent]:
        raise NotImplementedError

    def mask(self, body: bytes) -> bytes:
        return body
