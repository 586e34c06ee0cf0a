"""Lead form deliveries: the key in the body, per-form keys, masking, test leads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cmis_google.webhooks import GoogleLeadWebhooks

from cmis_core.errors import MissingSetting, SignatureInvalid, WebhookRejected
from cmis_core.settings import PlatformSettings
from cmis_core.types import WebhookRequest

SHARED = "shared-key-0001"
FORM_KEY = "form-key-0002"
HOOKS = GoogleLeadWebhooks()


def settings(**env: str) -> PlatformSettings:
    return PlatformSettings(
        platform="google", environ={f"CMIS_GOOGLE_{k}": v for k, v in env.items()}
    )


def delivery(**overrides: Any) -> WebhookRequest:
    body: dict[str, Any] = {
        "lead_id": "TeSter-123-ABCDEF",
        "user_column_data": [
            {"column_name": "Full Name", "string_value": "Ada Lovelace", "column_id": "FULL_NAME"},
            {"column_name": "User Email", "string_value": "ada@example.com", "column_id": "EMAIL"},
        ],
        "api_version": "1.0",
        "form_id": 40000000000,
        "campaign_id": 12345678901,
        "google_key": SHARED,
        "is_test": True,
        "gcl_id": "gcl-1",
        "adgroup_id": 20000000000,
        "creative_id": "30000000000",
    }
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    return WebhookRequest(
        platform="google",
        method="POST",
        path="/webhooks/google",
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
    )


def test_the_shared_key_verifies_and_the_lead_parses() -> None:
    request = delivery()
    HOOKS.verify(request, settings(WEBHOOK_KEY=SHARED))
    (event,) = HOOKS.parse(HOOKS.mask(request.body))
    assert (event.kind, event.route_kind, event.route_id) == ("lead", "form", "40000000000")
    lead = event.payload["lead"]
    assert lead["external_id"] == "TeSter-123-ABCDEF"
    assert (lead["campaign_id"], lead["ad_group_id"], lead["ad_id"]) == (
        "12345678901",
        "20000000000",
        "30000000000",
    )
    assert lead["is_test"] is True
    assert event.payload["is_test"] is True
    assert lead["fields"] == {"FULL_NAME": "Ada Lovelace", "EMAIL": "ada@example.com"}
    assert "Ada" not in repr(event)


def test_a_form_with_its_own_key_refuses_the_shared_key() -> None:
    configured = settings(WEBHOOK_KEY=SHARED, WEBHOOK_KEY_40000000000=FORM_KEY)
    HOOKS.verify(delivery(google_key=FORM_KEY), configured)
    with pytest.raises(SignatureInvalid):
        HOOKS.verify(delivery(google_key=SHARED), configured)
    HOOKS.verify(delivery(form_id=41, google_key=SHARED), configured)  # other forms: shared


@pytest.mark.parametrize(
    ("key", "reason"),
    [("wrong", "bad_signature"), (None, "missing_signature"), ("", "missing_signature")],
)
def test_wrong_or_missing_keys_are_refused(key: str | None, reason: str) -> None:
    request = delivery(google_key=key) if key is not None else delivery(google_key=None)
    with pytest.raises(SignatureInvalid) as caught:
        HOOKS.verify(request, settings(WEBHOOK_KEY=SHARED))
    assert caught.value.reason == reason
    assert SHARED not in str(caught.value)


def test_no_key_configured_names_the_setting() -> None:
    with pytest.raises(MissingSetting, match="CMIS_GOOGLE_WEBHOOK_KEY"):
        HOOKS.verify(delivery(), settings())


def test_malformed_bodies_are_rejected() -> None:
    bad = WebhookRequest(platform="google", method="POST", path="/", body=b"{not json")
    with pytest.raises(WebhookRejected) as caught:
        HOOKS.verify(bad, settings(WEBHOOK_KEY=SHARED))
    assert not isinstance(caught.value, SignatureInvalid)
    with pytest.raises(WebhookRejected):
        HOOKS.parse(json.dumps({"lead_id": "x"}).encode())


def test_mask_hides_the_key_and_keeps_the_lead() -> None:
    request = delivery()
    masked = HOOKS.mask(request.body)
    assert SHARED.encode() not in masked
    assert json.loads(masked)["lead_id"] == "TeSter-123-ABCDEF"
    with pytest.raises(SignatureInvalid):
        HOOKS.verify(
            WebhookRequest(platform="google", method="POST", path="/", body=masked),
            settings(WEBHOOK_KEY=SHARED),
        )


def test_dedupe_on_lead_id() -> None:
    assert HOOKS.dedupe_key(delivery()) == HOOKS.dedupe_key(delivery(gcl_id="other"))
    assert HOOKS.dedupe_key(delivery()) != HOOKS.dedupe_key(delivery(lead_id="another"))
