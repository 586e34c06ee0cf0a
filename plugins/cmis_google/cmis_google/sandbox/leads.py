"""Lead form webhook deliveries as Google sends them: JSON with the advertiser's key inside.

No signature header and no handshake: the body carries ``google_key``, the key set on
the form's ``WebhookDelivery``. ``signature="wrong"`` sends another key, ``"none"`` none.
"""

from __future__ import annotations

import json
from typing import Any

from cmis_core.testing.sandbox import Delivery, Handshake
from cmis_core.testing.sandbox.webhooks import SignatureMode
from cmis_google.sandbox.data import Accounts

PATH = "/webhooks/google"
COLUMNS = (
    ("FULL_NAME", "Full Name"),
    ("EMAIL", "User Email"),
    ("PHONE_NUMBER", "User Phone"),
    ("POSTAL_CODE", "Postal Code"),
)


class LeadDeliveries:
    """The ``WebhookFaker`` of the Google sandbox."""

    timestamped = False

    def __init__(self, accounts: Accounts, *, key: str, form_id: int = 40_000_000_001) -> None:
        self.accounts = accounts
        self._key = key
        self.form_id = form_id
        self._count = 0

    def body(self, n: int, *, key: str | None, is_test: bool = False) -> dict[str, Any]:
        """The ``n``-th lead: on an ad of the first client, with four columns."""
        client = self.accounts.clients[0]
        ads = self.accounts.ads(client.id)
        ad = ads[n % len(ads)]
        data: dict[str, Any] = {
            "lead_id": f"SbxLead-{n:06d}-{self.form_id}",
            "user_column_data": [
                {"column_name": label, "string_value": _value(column, n), "column_id": column}
                for column, label in COLUMNS
            ],
            "api_version": "1.0",
            "form_id": self.form_id,
            "campaign_id": ad["campaign.id"],
            "adgroup_id": ad["ad_group.id"],
            "creative_id": ad["ad_group_ad.ad.id"],
            "gcl_id": f"sbx-gclid-{n}",
            "is_test": is_test,
        }
        if key is not None:
            data["google_key"] = key
        return data

    def delivery(
        self, *, signature: SignatureMode = "valid", timestamp_offset: float = 0.0, now: float
    ) -> Delivery:
        self._count += 1
        key = {"valid": self._key, "wrong": self._key + "-wrong", "none": None}[signature]
        body = json.dumps(self.body(self._count, key=key), separators=(",", ":")).encode()
        return Delivery(path=PATH, headers={"content-type": "application/json"}, body=body)

    def handshake(self) -> Handshake | None:
        return None


def _value(column: str, n: int) -> str:
    return {
        "FULL_NAME": f"Sandbox Lead {n}",
        "EMAIL": f"lead{n}@example.com",
        "PHONE_NUMBER": f"+1-650-555-{n % 10_000:04d}",
        "POSTAL_CODE": f"{94000 + n % 1000}",
    }[column]
