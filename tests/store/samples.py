"""One valid row per tenant table, for an organisation, built on one integration."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import Connection, insert

from cmis_core.store import tables as t


def add_integration(conn: Connection, org_id: int, platform: str = "meta", **values: Any) -> int:
    row = {"org_id": org_id, "platform": platform, **values}
    return int(
        conn.execute(
            insert(t.integrations).values(**row).returning(t.integrations.c.id)
        ).scalar_one()
    )


def tenant_rows(org_id: int, integration_id: int) -> dict[str, dict[str, Any]]:
    """A row for every tenant table but integrations, the same natural keys for every org."""
    base = {"org_id": org_id}
    return {
        "credentials": {
            **base,
            "integration_id": integration_id,
            "key_id": "k1",
            "ciphertext": b"\x00secret",
        },
        "ad_accounts": {
            **base,
            "platform": "meta",
            "external_id": "act_1",
            "integration_id": integration_id,
        },
        "campaigns": {
            **base,
            "platform": "meta",
            "external_id": "c1",
            "account_external_id": "act_1",
        },
        "ad_groups": {
            **base,
            "platform": "meta",
            "external_id": "g1",
            "account_external_id": "act_1",
        },
        "ads": {**base, "platform": "meta", "external_id": "a1", "account_external_id": "act_1"},
        "creatives": {
            **base,
            "platform": "meta",
            "external_id": "cr1",
            "account_external_id": "act_1",
        },
        "daily_metrics": {
            **base,
            "platform": "meta",
            "level": "ad",
            "entity_external_id": "a1",
            "date": dt.date(2024, 5, 1),
            "account_external_id": "act_1",
            "spend_micros": 1_250_000,
            "conversions": decimal.Decimal("2.5"),
        },
        "leads": {
            **base,
            "platform": "meta",
            "external_id": "l1",
            "fields": {"email": "a@example.com"},
        },
        "routes": {
            **base,
            "platform": "meta",
            "kind": "page",
            "external_id": "p1",
            "integration_id": integration_id,
        },
        "sync_state": {
            **base,
            "integration_id": integration_id,
            "stream": "ads",
            "partition_key": "",
            "state": {"w": 1},
        },
        "sync_runs": {**base, "integration_id": integration_id},
    }


def seed(conn: Connection, org_id: int) -> int:
    """Fill every tenant table with one row of ``org_id``; returns its integration id."""
    integration_id = add_integration(conn, org_id)
    for name, row in tenant_rows(org_id, integration_id).items():
        conn.execute(insert(t.metadata.tables[name]).values(**row))
    return integration_id
