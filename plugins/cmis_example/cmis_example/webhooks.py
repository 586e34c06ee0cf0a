"""Example Ads webhooks: HMAC-SHA256 over ``{timestamp}.{body}``, and a challenge handshake.

Deliveries carry ``X-Example-Timestamp`` (unix seconds) and ``X-Example-Signature:
sha256=<hex>``, signed with ``CMIS_EXAMPLE_WEBHOOK_SECRET``; a timestamp more than five
minutes away is refused. Subscribing sends ``GET ?mode=subscribe&challenge=..&verify_token=..``
which must echo the challenge when the verify token is ``CMIS_EXAMPLE_VERIFY_TOKEN``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from cmis_core import WebhookEvent, WebhookRequest, WebhookResponse
from cmis_core.errors import WebhookRejected
from cmis_core.settings import PlatformSettings
from cmis_core.webhooks.hmac import HmacScheme, HmacVerifier

SCHEME = HmacScheme(prefix="sha256=", timestamped=True, tolerance=300)
SIGNATURE_HEADER = "X-Example-Signature"
TIMESTAMP_HEADER = "X-Example-Timestamp"
KINDS = {"lead.created": "lead", "campaign.updated": "entity", "ad.updated": "entity"}


class ExampleWebhooks(HmacVerifier):
    """Verifies, deduplicates and parses Example Ads deliveries."""

    platform = "example"
    scheme = SCHEME
    signature_header = SIGNATURE_HEADER
    timestamp_header = TIMESTAMP_HEADER
    secret_setting = "WEBHOOK_SECRET"

    def handshake(
        self, request: WebhookRequest, settings: PlatformSettings
    ) -> WebhookResponse | None:
        if request.method.upper() != "GET":
            return None
        if request.query.get("mode") != "subscribe" or not request.query.get("challenge"):
            raise WebhookRejected(
                "not a subscription handshake", status=400, reason="bad_handshake"
            )
        expected = settings.require("VERIFY_TOKEN", "needed to answer the webhook handshake")
        given = request.query.get("verify_token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("wrong verify token", status=403, reason="bad_verify_token")
        return WebhookResponse(body=request.query["challenge"].encode())

    def dedupe_key(self, request: WebhookRequest) -> str:
        try:
            event_id = json.loads(request.body)["id"]
            return f"id:{event_id}"
        except (ValueError, KeyError, TypeError):
            return "sha256:" + hashlib.sha256(request.body).hexdigest()

    def parse(self, body: bytes) -> list[WebhookEvent]:
        try:
            data: Any = json.loads(body)
            kind = KINDS.get(data["type"], "other")
            occurred = dt.datetime.fromisoformat(data["occurred_at"])
            return [
                WebhookEvent(
                    platform=self.platform,
                    kind=kind,
                    route_kind="ad_account",
                    route_id=str(data["account_id"]),
                    external_id=str(data["object_id"]),
                    occurred_at=occurred,
                    payload={"type": data["type"], "id": data["id"]},
                )
            ]
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("malformed Example Ads delivery", reason="malformed") from None
