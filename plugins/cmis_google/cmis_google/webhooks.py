"""Google Ads lead form webhooks: the form's key inside the JSON body, nothing else.

Google POSTs ``{"lead_id", "user_column_data": [{"column_id", "column_name",
"string_value"}], "form_id", "campaign_id", "adgroup_id", "creative_id", "gcl_id",
"google_key", "is_test", "api_version"}``. There is no signature header, no timestamp
and no handshake: a delivery is genuine when its ``google_key`` equals the key set on the
form (``CMIS_GOOGLE_WEBHOOK_KEY_<FORM_ID>`` when configured for that form, else
``CMIS_GOOGLE_WEBHOOK_KEY``), compared in constant time. The stored body has the key
masked. Ids may arrive as JSON numbers or strings; both are read as strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from typing import Any

from cmis_core import WebhookEvent, WebhookRequest, WebhookResponse
from cmis_core.errors import SignatureInvalid, WebhookRejected
from cmis_core.settings import PlatformSettings
from cmis_google.client import NAME

DIGITS = re.compile(r"^\d{1,20}$")
MASK = "***"


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRejected("a Google lead delivery must be JSON", reason="malformed") from None
    if not isinstance(data, dict):
        raise WebhookRejected("a Google lead delivery must be a JSON object", reason="malformed")
    return data


def _id(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    return text if DIGITS.match(text) else None


def lead_record(data: dict[str, Any]) -> dict[str, Any]:
    """The lead as cmis stores it: its columns, campaign, ad group, ad and form."""
    columns = []
    for item in data.get("user_column_data") or []:
        if not isinstance(item, dict):
            continue
        value = item.get("string_value")
        if value is None and "boolean_value" in item:
            value = item["boolean_value"]
        columns.append(
            {"id": item.get("column_id"), "name": item.get("column_name"), "value": value}
        )
    return {
        "external_id": str(data["lead_id"]),
        "form_id": _id(data.get("form_id")),
        "campaign_id": _id(data.get("campaign_id")),
        "ad_group_id": _id(data.get("adgroup_id")),
        "ad_id": _id(data.get("creative_id")),
        "asset_id": _id(data.get("asset_id")),
        "gclid": data.get("gcl_id"),
        "is_test": bool(data.get("is_test", False)),
        "submitted_at": data.get("lead_submit_time"),
        "fields": {str(c["id"] or c["name"]): c["value"] for c in columns},
        "columns": columns,
        "api_version": data.get("api_version"),
    }


class GoogleLeadWebhooks:
    """Verifies, deduplicates, parses and masks Google Ads lead form deliveries."""

    platform = NAME

    def handshake(
        self, request: WebhookRequest, settings: PlatformSettings
    ) -> WebhookResponse | None:
        return None  # Google sends no subscription handshake

    def expected_key(self, form_id: str | None, settings: PlatformSettings) -> str:
        """The key for ``form_id``: its own setting when there is one, else the shared key."""
        if form_id is not None:
            own = settings.get(f"WEBHOOK_KEY_{form_id}")
            if own:
                return own
        return settings.require("WEBHOOK_KEY", "needed to verify Google lead form deliveries")

    def verify(self, request: WebhookRequest, settings: PlatformSettings) -> None:
        if request.method.upper() != "POST":
            raise WebhookRejected("deliveries are POSTed", status=405, reason="bad_method")
        data = _load(request.body)
        given = data.get("google_key")
        expected = self.expected_key(_id(data.get("form_id")), settings)
        if not isinstance(given, str) or not given:
            raise SignatureInvalid("the delivery carries no google_key", reason="missing_signature")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureInvalid("google_key does not match the form's key")

    def dedupe_key(self, request: WebhookRequest) -> str:
        try:
            lead = json.loads(request.body).get("lead_id")
        except (ValueError, AttributeError):
            lead = None
        if isinstance(lead, str) and lead:
            return f"lead:{lead}"
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    def parse(self, body: bytes) -> list[WebhookEvent]:
        data = _load(body)
        form = _id(data.get("form_id"))
        if not data.get("lead_id") or form is None:
            raise WebhookRejected(
                "a Google lead delivery needs lead_id and form_id", reason="malformed"
            )
        record = lead_record(data)
        submitted = record["submitted_at"]
        try:
            occurred = dt.datetime.fromisoformat(submitted) if submitted else None
        except (TypeError, ValueError):
            occurred = None
        if occurred is not None and occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=dt.UTC)
        return [
            WebhookEvent(
                platform=NAME,
                kind="lead",
                route_kind="form",
                route_id=form,
                external_id=record["external_id"],
                occurred_at=occurred,
                payload={"lead": record, "is_test": record["is_test"]},
            )
        ]

    def mask(self, body: bytes) -> bytes:
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if isinstance(data, dict) and "google_key" in data:
            data["google_key"] = MASK
            return json.dumps(data, separators=(",", ":")).encode()
        return body
