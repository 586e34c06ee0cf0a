"""Lead records (as plugins produce them) to rows of ``leads``, and reading them back.

A lead's ``fields`` are personal data: they are stored, never logged, never printed; the
listing shows which fields a lead has, not their values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import Connection

from cmis_core.errors import UsageError
from cmis_core.store import scoped
from cmis_core.store.tables import leads
from cmis_core.types import WebhookEvent

COLUMNS = ("external_id", "form_id", "ad_id", "ad_group_id", "campaign_id", "page_id")
TIME_KEYS = ("created_time", "created_at", "submitted_at")
MAPPED = frozenset({*COLUMNS, *TIME_KEYS, "fields", "is_test"})


def _when(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        when = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        text = str(value).strip()
        if text.isdigit():
            when = dt.datetime.fromtimestamp(int(text), dt.UTC)
        else:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def lead_row(record: Mapping[str, Any], event: WebhookEvent) -> dict[str, Any]:
    """The ``leads`` row for ``record`` (org_id comes from the transaction).

    Ids the record lacks are taken from the event (its form or page route, its payload);
    keys the common model has no column for are kept in ``raw``.
    """
    external_id = _text(record.get("external_id")) or event.external_id
    if not external_id:
        raise UsageError("a lead record needs an external_id")
    payload = event.payload
    row: dict[str, Any] = {
        "platform": event.platform,
        "external_id": external_id,
    }
    for column in COLUMNS[1:]:
        row[column] = _text(record.get(column)) or _text(payload.get(column))
    if row["form_id"] is None and event.route_kind == "form":
        row["form_id"] = event.route_id
    if row["page_id"] is None and event.route_kind == "page":
        row["page_id"] = event.route_id
    created = next((record[k] for k in TIME_KEYS if record.get(k) not in (None, "")), None)
    try:
        row["created_time"] = _when(created) or event.occurred_at
    except (ValueError, OverflowError, OSError):
        row["created_time"] = event.occurred_at
    fields = record.get("fields")
    row["fields"] = dict(fields) if isinstance(fields, Mapping) else None
    row["is_test"] = bool(record.get("is_test", payload.get("is_test", False)))
    row["raw"] = {k: v for k, v in record.items() if k not in MAPPED} or None
    return row


@attrs.frozen(kw_only=True)
class LeadSummary:
    """A stored lead as `cmis leads list` shows it: ids and field names, never values."""

    platform: str
    external_id: str
    form_id: str | None
    ad_id: str | None
    campaign_id: str | None
    page_id: str | None
    created_time: dt.datetime | None
    is_test: bool
    field_names: tuple[str, ...]
    stored_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "platform": self.platform,
            "external_id": self.external_id,
            "form_id": self.form_id,
            "ad_id": self.ad_id,
            "campaign_id": self.campaign_id,
            "page_id": self.page_id,
            "created_time": iso(self.created_time),
            "is_test": self.is_test,
            "fields": list(self.field_names),
            "stored_at": iso(self.stored_at),
        }


def list_leads(
    conn: Connection, *, platform: str | None = None, limit: int = 50
) -> list[LeadSummary]:
    """The leads of the transaction's organisation, newest first."""
    c = leads.c
    query = (
        scoped(conn, leads)
        .order_by(c.created_time.desc().nulls_last(), c.created_at.desc(), c.external_id)
        .limit(limit)
    )
    if platform is not None:
        query = query.where(c.platform == platform)
    out = []
    for r in conn.execute(query):
        fields = r.fields if isinstance(r.fields, Mapping) else {}
        out.append(
            LeadSummary(
                platform=r.platform,
                external_id=r.external_id,
                form_id=r.form_id,
                ad_id=r.ad_id,
                campaign_id=r.campaign_id,
                page_id=r.page_id,
                created_time=r.created_time,
                is_test=bool(r.is_test),
                field_names=tuple(sorted(str(k) for k in fields)),
                stored_at=r.created_at,
            )
        )
    return out
