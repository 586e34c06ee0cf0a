"""Value objects the store returns (attrs, frozen): never table rows, never secrets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Org:
    """An organisation: ``slug`` names it in the CLI and in URLs."""

    id: int
    slug: str
    name: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Org:
        return cls(id=row["id"], slug=row["slug"], name=row["name"], created_at=row["created_at"])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
        }


@attrs.frozen(kw_only=True)
class ApiKeyInfo:
    """What is known about an API key besides the key itself (only its hash is stored)."""

    id: int
    org_id: int
    name: str | None
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ApiKeyInfo:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            name=row["name"],
            prefix=row["prefix"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )

    def to_json(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "org_id": self.org_id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }


@attrs.frozen(kw_only=True)
class DueIntegration:
    """An integration with work due: a sync (schedule or queued), a token refresh, or both."""

    org_id: int
    integration_id: int
    platform: str
    sync_due: bool
    refresh_due: bool


@attrs.frozen(kw_only=True)
class RouteTarget:
    """Where a webhook about a page, ad account, form or customer goes."""

    org_id: int
    integration_id: int


@attrs.frozen(kw_only=True)
class UpsertResult:
    """What a bulk upsert did: rows inserted, updated, and left alone because unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            inserted=self.inserted + other.inserted,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
        )
