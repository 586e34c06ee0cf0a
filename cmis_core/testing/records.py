"""What a mapped record must look like for the kit: required fields and natural keys.

The common model's columns are owned by the store; this is the part every stream must
honour whatever the store adds: an ``external_id``; an ``account_id`` below the account;
a normalised ``status`` on entities; ``level`` and ``date`` on daily metrics; and money
(every ``*_micros`` field) as ``int``, never float or string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping
from typing import Any

from cmis_core.types import EntityKind, EntityStatus

ENTITIES = {
    EntityKind.AD_ACCOUNT,
    EntityKind.CAMPAIGN,
    EntityKind.AD_GROUP,
    EntityKind.AD,
    EntityKind.CREATIVE,
}
LEVELS = {"account", "campaign", "ad_group", "ad"}
STATUSES = {str(s) for s in EntityStatus}


def problems(entity: EntityKind, record: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``record`` as a row of ``entity`` (empty when it is valid)."""
    found: list[str] = []
    if not isinstance(record.get("external_id"), str) or not record["external_id"]:
        found.append("external_id must be a non-empty string")
    if entity is not EntityKind.AD_ACCOUNT and not record.get("account_id"):
        found.append("account_id is required below the ad account")
    if entity in ENTITIES and record.get("status") not in STATUSES:
        found.append(f"status must be one of {sorted(STATUSES)}, got {record.get('status')!r}")
    if entity is EntityKind.AD_ACCOUNT and not record.get("currency"):
        found.append("an ad account needs its currency")
    if entity is EntityKind.DAILY_METRIC:
        if record.get("level") not in LEVELS:
            found.append(f"level must be one of {sorted(LEVELS)}")
        date = record.get("date")
        if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
            found.append("date must be a datetime.date")
        if "spend_micros" not in record:
            found.append("daily metrics need spend_micros")
        for name in ("impressions", "clicks"):
            if type(record.get(name)) is not int:
                found.append(f"{name} must be an int")
    for name, value in record.items():
        if name.endswith("_micros") and value is not None and type(value) is not int:
            found.append(
                f"{name} is money in micros and must be an int, got {type(value).__name__}"
            )
    return found


def natural_key(entity: EntityKind, record: Mapping[str, Any]) -> Hashable:
    """The key a record is upserted on (without the org)."""
    if entity is EntityKind.DAILY_METRIC:
        return (
            record.get("account_id"),
            record.get("level"),
            record.get("external_id"),
            str(record.get("date")),
        )
    return (
        record.get("account_id") if entity is not EntityKind.AD_ACCOUNT else None,
        record.get("external_id"),
    )
