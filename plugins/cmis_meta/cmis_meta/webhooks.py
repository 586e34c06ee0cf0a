"""Meta webhooks: the ``hub.*`` handshake, ``X-Hub-Signature-256``, lead and ad-account events.

Subscribing (or editing the subscription) sends ``GET ?hub.mode=subscribe&hub.challenge=<n>
&hub.verify_token=<t>``, answered with the challenge when ``t`` equals
``CMIS_META_WEBHOOK_VERIFY_TOKEN``. Deliveries are POSTed with ``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body, keyed with the app secret>``
(``CMIS_META_CLIENT_SECRET``); there is no timestamp and no delivery id.

Events, each routed by the object it concerns:

- ``page`` / ``leadgen`` -> kind ``lead``, routed by page id; the delivery holds only ids,
  so the event says how to fetch the lead: ``payload["sync_stream"] == "leads"`` with
  ``payload["sync_params"] == {"lead_id": ...}`` (a targeted partition of the leads stream).
- ``ad_account`` / ``with_issues_ad_objects``, ``in_process_ad_objects`` -> kind ``entity``,
  routed by ``act_<id>``, with the stream and ids of a targeted re-read of that object.
- other ad-account fields (recommendations, creative fatigue, ...) -> kind ``other``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cmis_core import WebhookEvent, WebhookRequest, WebhookResponse
from cmis_core.errors import WebhookRejected
from cmis_core.settings import PlatformSettings
from cmis_core.webhooks.hmac import HmacScheme, HmacVerifier

SCHEME = HmacScheme(algorithm="sha256", encoding="hex", prefix="sha256=")
SIGNATURE_HEADER = "X-Hub-Signature-256"
ENTITY_FIELDS = frozenset({"with_issues_ad_objects", "in_process_ad_objects"})
LEVEL_STREAM = {"AD": "ads", "AD_SET": "ad_groups", "ADSET": "ad_groups", "CAMPAIGN": "campaigns"}


def _when(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def account_id(value: Any) -> str:
    """``act_<id>`` from an ad-account entry id (Meta sends it with or without the prefix)."""
    text = str(value)
    return text if text.startswith("act_") else f"act_{text}"


class MetaWebhooks(HmacVerifier):
    """Verifies, deduplicates and parses Meta deliveries (pages and ad accounts)."""

    platform = "meta"
    scheme = SCHEME
    signature_header = SIGNATURE_HEADER
    secret_setting = "CLIENT_SECRET"

    def handshake(
        self, request: WebhookRequest, settings: PlatformSettings
    ) -> WebhookResponse | None:
        if request.method.upper() != "GET":
            return None
        query = request.query
        if query.get("hub.mode") != "subscribe" or not query.get("hub.challenge"):
            raise WebhookRejected(
                "not a subscription handshake", status=400, reason="bad_handshake"
            )
        expected = settings.require("WEBHOOK_VERIFY_TOKEN", "needed to answer Meta's handshake")
        given = query.get("hub.verify_token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("wrong verify token", status=403, reason="bad_verify_token")
        return WebhookResponse(body=query["hub.challenge"].encode())

    def dedupe_key(self, request: WebhookRequest) -> str:
        """``leadgen:<ids>`` for lead deliveries (Meta may re-batch retries), else a body hash."""
        try:
            changes = [
                c for entry in json.loads(request.body)["entry"] for c in entry.get("changes") or []
            ]
            if changes and all(c.get("field") == "leadgen" for c in changes):
                ids = sorted(str(c["value"]["leadgen_id"]) for c in changes)
                return "leadgen:" + ",".join(ids)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    def parse(self, body: bytes) -> list[WebhookEvent]:
        try:
            data: Any = json.loads(body)
            kind = data["object"]
            entries = data["entry"]
            events: list[WebhookEvent] = []
            for entry in entries:
                for change in entry.get("changes") or []:
                    event = self._event(kind, entry, change)
                    if event is not None:
                        events.append(event)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WebhookRejected("malformed Meta delivery", reason="malformed") from None
        return events

    def _event(
        self, kind: str, entry: Mapping[str, Any], change: Mapping[str, Any]
    ) -> WebhookEvent | None:
        field, value = change["field"], change.get("value") or {}
        if kind == "page" and field == "leadgen":
            lead_id = str(value["leadgen_id"])
            return WebhookEvent(
                platform=self.platform,
                kind="lead",
                route_kind="page",
                route_id=str(value.get("page_id") or entry["id"]),
                external_id=lead_id,
                occurred_at=_when(value.get("created_time")),
                payload={
                    "field": field,
                    "form_id": value.get("form_id"),
                    "ad_id": value.get("ad_id") or value.get("adgroup_id"),
                    "page_id": value.get("page_id") or entry["id"],
                    "sync_stream": "leads",
                    "sync_params": {
                        "lead_id": lead_id,
                        "page_id": str(value.get("page_id") or entry["id"]),
                        "form_id": value.get("form_id"),
                    },
                },
            )
        if kind == "ad_account":
            object_id = str(value.get("id") or entry["id"])
            stream = LEVEL_STREAM.get(str(value.get("level") or "").upper())
            targeted = field in ENTITY_FIELDS and stream is not None
            payload: dict[str, Any] = {"field": field, "level": value.get("level")}
            for key in ("error_code", "error_summary", "status_name"):
                if key in value:
                    payload[key] = value[key]
            if targeted:
                payload.update(sync_stream=stream, sync_params={"ids": [object_id]})
            return WebhookEvent(
                platform=self.platform,
                kind="entity" if targeted else "other",
                route_kind="ad_account",
                route_id=account_id(entry["id"]),
                external_id=object_id,
                occurred_at=_when(entry.get("time")),
                payload=payload,
            )
        return WebhookEvent(
            platform=self.platform,
            kind="other",
            route_kind="page" if kind == "page" else kind,
            route_id=str(entry["id"]),
            external_id=str(entry["id"]),
            occurred_at=_when(entry.get("time")),
            payload={"object": kind, "field": field},
        )
