"""Receiving one delivery: read with limits, handshake, verify, store, answer.

:class:`Receiver` holds what the webhook routes share (registry, settings, inbox writer,
metrics); it reads the body from an ASGI ``receive`` callable and returns an
:class:`Answer`, whatever the web framework around it. Every refusal is a
:class:`~cmis_core.errors.WebhookRejected` with an HTTP status and a ``reason`` label,
counted and logged once (platform, reason, status: never the body, a header value or a
secret). The answers:

===  =====================================================================
200  handshake answered; delivery stored; redelivery of a stored delivery
400  not what the platform sends (``malformed``), a handshake that is none
401  ``missing_signature``, ``malformed_signature``, ``bad_signature``,
     ``missing_timestamp``, ``stale_timestamp``
403  wrong verify token (``bad_verify_token``)
404  no plugin provides the platform (``unknown_platform``)
405  a method other than GET (handshakes) and POST (deliveries)
408  the sender did not finish its body within ``CMIS_WEBHOOK_BODY_TIMEOUT``
413  the body is over ``CMIS_WEBHOOK_MAX_BODY`` (refused while reading)
503  the inbox did not confirm the commit, the platform's secret is not configured,
     or its plugin failed to load: the platform retries later
===  =====================================================================
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping

import attrs
import structlog

from cmis_core.contract import Receive, WebhookVerifier
from cmis_core.errors import (
    ConfigurationError,
    PluginError,
    UnknownPlatform,
    WebhookRejected,
)
from cmis_core.factory import Registry
from cmis_core.settings import PlatformSettings, Settings
from cmis_core.types import WebhookRequest, WebhookResponse
from cmis_core.webhooks.deadlines import Deadlines
from cmis_core.webhooks.delivery import Delivery, kept_headers
from cmis_core.webhooks.metrics import UNKNOWN_PLATFORM, WebhookMetrics, label
from cmis_core.webhooks.writer import InboxUnavailable, InboxWriter

log = structlog.get_logger(__name__)

METHODS = ("GET", "POST")


@attrs.frozen(kw_only=True)
class Answer:
    """What to send back: status, body, media type, extra headers; ``outcome`` for metrics."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    outcome: str = ""


def _json(status: int, text: str, **headers: str) -> Answer:
    return Answer(status=status, body=text.encode(), headers=headers)


STORED = Answer(status=200, body=b'{"status":"stored"}', outcome="stored")
DUPLICATE = Answer(status=200, body=b'{"status":"duplicate"}', outcome="duplicate")


async def read_body(
    receive: Receive,
    *,
    declared: str | None,
    limit: int,
    seconds: float,
    deadlines: Deadlines | None = None,
) -> bytes:
    """The whole body from ASGI ``receive``, refused as soon as it is known to exceed
    ``limit`` (413) or when it takes longer than ``seconds`` to arrive (408)."""
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise WebhookRejected("bad Content-Length", status=400, reason="malformed") from None
        if length > limit:
            raise WebhookRejected("body over the limit", status=413, reason="body_too_large")
    deadlines = deadlines or Deadlines()
    task = deadlines.watch(seconds)
    try:
        return await _collect(receive, limit)
    except asyncio.CancelledError:
        if deadlines.done(task):
            raise WebhookRejected(
                "body not received in time", status=408, reason="body_timeout"
            ) from None
        raise
    finally:
        deadlines.done(task)


async def _collect(receive: Receive, limit: int) -> bytes:
    message = await receive()
    parts: bytearray | None = None
    while True:
        if message["type"] == "http.disconnect":
            raise WebhookRejected("the sender went away", status=400, reason="client_gone")
        chunk: bytes = message.get("body", b"")
        if parts is None:
            if not message.get("more_body", False):  # the usual case: one message
                if len(chunk) > limit:
                    raise WebhookRejected(
                        "body over the limit", status=413, reason="body_too_large"
                    )
                return bytes(chunk)
            parts = bytearray()
        parts += chunk
        if len(parts) > limit:
            raise WebhookRejected("body over the limit", status=413, reason="body_too_large")
        if not message.get("more_body", False):
            return bytes(parts)
        message = await receive()


class Receiver:
    """The webhook endpoint's logic, independent of the web framework."""

    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        writer: InboxWriter,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.writer = writer
        self.metrics = metrics or WebhookMetrics()
        self._verifiers: dict[str, WebhookVerifier] = {}
        self._platform_settings: dict[str, PlatformSettings] = {}
        self._deadlines = Deadlines()

    async def receive(
        self,
        *,
        platform: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: Receive,
    ) -> Answer:
        """Answer one request to ``/webhooks/{platform}`` (``headers`` lower-cased,
        ``body`` the ASGI ``receive`` to read the body from)."""
        started = time.perf_counter()
        metric_platform = platform
        try:
            try:
                verifier = self._verifiers.get(platform) or self._verifier(platform)
            except UnknownPlatform:
                metric_platform = UNKNOWN_PLATFORM
                raise WebhookRejected(
                    "no plugin provides this platform", status=404, reason="unknown_platform"
                ) from None
            except PluginError:
                raise WebhookRejected(
                    "the platform's plugin is unavailable", status=503, reason="plugin_unavailable"
                ) from None
            method = method.upper()
            if method not in METHODS:
                raise WebhookRejected("method not allowed", status=405, reason="bad_method")
            raw = b""
            if method == "POST":
                raw = await read_body(
                    body,
                    declared=headers.get("content-length"),
                    limit=self.settings.webhook_max_body,
                    seconds=self.settings.webhook_body_timeout,
                    deadlines=self._deadlines,
                )
            request = WebhookRequest(
                platform=platform,
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=raw,
                received_at=dt.datetime.now(dt.UTC),
            )
            answer = self._handshake_or_verify(verifier, request)
            if answer is not None:
                return answer
            delivery = self._delivery(verifier, request)
            try:
                new = await self.writer.store(delivery, within=self.settings.webhook_commit_timeout)
            except InboxUnavailable:
                raise WebhookRejected(
                    "the inbox is unavailable", status=503, reason="inbox_unavailable"
                ) from None
            self.metrics.observe(platform, time.perf_counter() - started)
            answer = STORED if new else DUPLICATE
            self.metrics.delivered(platform, answer.outcome)
            return answer
        except WebhookRejected as exc:
            reason = label(exc.reason)
            self.metrics.rejected(metric_platform, reason, exc.status)
            log_method = log.error if exc.status >= 500 else log.warning
            log_method(
                "webhooks.rejected",
                platform=metric_platform,
                reason=reason,
                status=exc.status,
            )
            extra = {"retry-after": "5"} if exc.status == 503 else {}
            if exc.status == 405:
                extra["allow"] = ", ".join(METHODS)
            return _json(exc.status, f'{{"error":"{reason}"}}', **extra)

    def _verifier(self, platform: str) -> WebhookVerifier:
        verifier = self.registry.webhook_verifier(platform)
        self._verifiers[platform] = verifier
        return verifier

    def _handshake_or_verify(
        self, verifier: WebhookVerifier, request: WebhookRequest
    ) -> Answer | None:
        """The handshake's answer, or None once the delivery is verified (raises otherwise)."""
        settings = self._platform_settings.get(request.platform)
        if settings is None:
            settings = self._platform_settings[request.platform] = self.settings.platform(
                request.platform
            )
        try:
            shake: WebhookResponse | None = verifier.handshake(request, settings)
            if shake is not None:
                self.metrics.delivered(request.platform, "handshake")
                log.info("webhooks.handshake", platform=request.platform, status=shake.status)
                return Answer(
                    status=shake.status,
                    body=shake.body,
                    media_type=shake.media_type,
                    outcome="handshake",
                )
            if request.method != "POST":
                raise WebhookRejected("deliveries are POSTed", status=405, reason="bad_method")
            verifier.verify(request, settings)
        except WebhookRejected:
            raise
        except ConfigurationError as exc:
            log.error("webhooks.not_configured", platform=request.platform, error=exc.message)
            raise WebhookRejected(
                "the platform's webhook secret is not configured",
                status=503,
                reason="not_configured",
            ) from None
        except Exception as exc:  # a plugin bug on odd input: refuse, never 500
            log.error(
                "webhooks.verify_crashed", platform=request.platform, error=type(exc).__name__
            )
            raise WebhookRejected("unreadable delivery", status=400, reason="malformed") from None
        return None

    def _delivery(self, verifier: WebhookVerifier, request: WebhookRequest) -> Delivery:
        """The verified delivery to store: masked body, dedupe key, headers that matter."""
        try:
            body = verifier.mask(request.body)
            verifier.parse(body)  # refuse what the processor could never read
            key = verifier.dedupe_key(request)
        except WebhookRejected as exc:
            raise WebhookRejected("malformed delivery", status=400, reason=exc.reason) from None
        except Exception as exc:
            log.error("webhooks.parse_crashed", platform=request.platform, error=type(exc).__name__)
            raise WebhookRejected("unreadable delivery", status=400, reason="malformed") from None
        return Delivery(
            platform=request.platform,
            dedupe_key=key,
            received_at=request.received_at,
            headers=kept_headers(request.headers),
            body=body,
        )
