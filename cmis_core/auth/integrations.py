"""Integration and credential rows: read, connect, store refreshed tokens, disconnect.

Functions here take a connection of an org transaction (:meth:`Store.org`) and never do
I/O beyond it; the flows in :mod:`cmis_core.auth.connect` and :mod:`cmis_core.auth.tokens`
call them in short transactions, never across an HTTP call. Tokens are sealed by the vault
with the row's ids as associated data; the credential's ``version`` is bumped on every
write, so a writer can compare and set on it (:func:`write_tokens`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import Connection, delete, insert, select, update

from cmis_core.store import current_org_id, tables
from cmis_core.types import Identity, IntegrationStatus, TokenSet, utcnow
from cmis_core.vault import Sealed, Vault

_I = tables.integrations
_C = tables.credentials

# Tables with synced data, deleted by (org_id, platform) on a purge.
DATA_TABLES = (
    tables.campaigns,
    tables.ad_groups,
    tables.ads,
    tables.creatives,
    tables.daily_metrics,
    tables.leads,
)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@attrs.frozen(kw_only=True)
class IntegrationInfo:
    """An integration row as the CLI and API show it: never a token."""

    org_id: int
    id: int
    platform: str
    status: IntegrationStatus = attrs.field(converter=IntegrationStatus)
    external_user_id: str | None = None
    external_user_name: str | None = None
    scopes: tuple[str, ...] = ()
    access_expires_at: dt.datetime | None = None
    refresh_expires_at: dt.datetime | None = None
    last_sync_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> IntegrationInfo:
        return cls(
            org_id=int(row["org_id"]),
            id=int(row["id"]),
            platform=row["platform"],
            status=row["status"],
            external_user_id=row["external_user_id"],
            external_user_name=row["external_user_name"],
            scopes=tuple(row["scopes"] or ()),
            access_expires_at=row["access_expires_at"],
            refresh_expires_at=row["refresh_expires_at"],
            last_sync_at=row["last_sync_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @property
    def account(self) -> str | None:
        """Who granted access, as shown: ``name (id)``, the id, or nothing."""
        if self.external_user_name and self.external_user_id:
            return f"{self.external_user_name} ({self.external_user_id})"
        return self.external_user_id or self.external_user_name

    def to_json(self) -> dict[str, Any]:
        return {
            "integration_id": self.id,
            "platform": self.platform,
            "status": str(self.status),
            "account": self.account,
            "external_user_id": self.external_user_id,
            "scopes": list(self.scopes),
            "access_expires_at": _iso(self.access_expires_at),
            "refresh_expires_at": _iso(self.refresh_expires_at),
            "last_sync_at": _iso(self.last_sync_at),
        }


@attrs.frozen(kw_only=True)
class StoredTokens:
    """An integration with its opened credential and the credential's version."""

    integration: IntegrationInfo
    tokens: TokenSet = attrs.field(repr=False)
    version: int


def find(conn: Connection, platform: str) -> IntegrationInfo | None:
    """The integration of ``platform`` in the org of ``conn``, if there is one."""
    org_id = current_org_id(conn)
    row = conn.execute(select(_I).where(_I.c.org_id == org_id, _I.c.platform == platform)).first()
    return None if row is None else IntegrationInfo.from_row(row._mapping)


def list_all(conn: Connection) -> list[IntegrationInfo]:
    """Every integration of the org of ``conn``, by platform."""
    org_id = current_org_id(conn)
    rows = conn.execute(select(_I).where(_I.c.org_id == org_id).order_by(_I.c.platform))
    return [IntegrationInfo.from_row(row._mapping) for row in rows]


def load(conn: Connection, vault: Vault, platform: str) -> StoredTokens | None:
    """The integration of ``platform`` and its opened tokens; ``None`` without a credential."""
    integration = find(conn, platform)
    if integration is None:
        return None
    row = conn.execute(
        select(_C.c.key_id, _C.c.ciphertext, _C.c.version).where(
            _C.c.org_id == integration.org_id, _C.c.integration_id == integration.id
        )
    ).first()
    if row is None:
        return None
    tokens = vault.open_tokens(
        Sealed(key_id=row.key_id, ciphertext=bytes(row.ciphertext)),
        org_id=integration.org_id,
        integration_id=integration.id,
    )
    return StoredTokens(integration=integration, tokens=tokens, version=int(row.version))


def _expiries(tokens: TokenSet, identity: Identity | None) -> dict[str, Any]:
    access = tokens.expires_at or (identity.expires_at if identity else None)
    return {"access_expires_at": access, "refresh_expires_at": tokens.refresh_expires_at}


def save_connection(
    conn: Connection,
    vault: Vault,
    platform: str,
    tokens: TokenSet,
    identity: Identity,
) -> tuple[IntegrationInfo, IntegrationInfo | None, int]:
    """Create or replace the integration of ``platform`` with ``tokens`` (status active).

    Returns the integration, the row as it was before (``None`` when new) and the new
    credential version. One integration per org and platform: connecting again replaces
    the credentials, never adds a row.
    """
    org_id = current_org_id(conn)
    previous = find(conn, platform)
    now = utcnow()
    values: dict[str, Any] = {
        "status": IntegrationStatus.ACTIVE.value,
        "external_user_id": identity.user_id,
        "external_user_name": identity.name,
        "scopes": list(identity.scopes or tokens.scopes),
        "updated_at": now,
        **_expiries(tokens, identity),
    }
    if previous is None:
        integration_id = int(
            conn.execute(
                insert(_I).values(org_id=org_id, platform=platform, **values).returning(_I.c.id)
            ).scalar_one()
        )
    else:
        integration_id = previous.id
        conn.execute(
            update(_I).where(_I.c.org_id == org_id, _I.c.id == integration_id).values(**values)
        )
    version = _put_credential(conn, vault, org_id, integration_id, tokens, now)
    row = conn.execute(select(_I).where(_I.c.org_id == org_id, _I.c.id == integration_id)).one()
    return IntegrationInfo.from_row(row._mapping), previous, version


def _put_credential(
    conn: Connection,
    vault: Vault,
    org_id: int,
    integration_id: int,
    tokens: TokenSet,
    now: dt.datetime,
) -> int:
    sealed = vault.seal_tokens(tokens, org_id=org_id, integration_id=integration_id)
    where = (_C.c.org_id == org_id, _C.c.integration_id == integration_id)
    current = conn.execute(select(_C.c.version).where(*where)).scalar_one_or_none()
    if current is None:
        conn.execute(
            insert(_C).values(
                org_id=org_id,
                integration_id=integration_id,
                key_id=sealed.key_id,
                ciphertext=sealed.ciphertext,
                version=1,
            )
        )
        return 1
    conn.execute(
        update(_C)
        .where(*where)
        .values(
            key_id=sealed.key_id,
            ciphertext=sealed.ciphertext,
            version=_C.c.version + 1,
            updated_at=now,
        )
    )
    return int(current) + 1


def write_tokens(
    conn: Connection,
    vault: Vault,
    integration: IntegrationInfo,
    tokens: TokenSet,
    *,
    expected_version: int,
) -> int | None:
    """Store refreshed ``tokens`` if the credential is still at ``expected_version``.

    Returns the new version, or ``None`` when another writer got there first (nothing is
    written then). Also records the new expiry times on the integration.
    """
    now = utcnow()
    sealed = vault.seal_tokens(tokens, org_id=integration.org_id, integration_id=integration.id)
    result = conn.execute(
        update(_C)
        .where(
            _C.c.org_id == integration.org_id,
            _C.c.integration_id == integration.id,
            _C.c.version == expected_version,
        )
        .values(
            key_id=sealed.key_id,
            ciphertext=sealed.ciphertext,
            version=expected_version + 1,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        return None
    values: dict[str, Any] = {"updated_at": now, **_expiries(tokens, None)}
    if tokens.scopes:
        values["scopes"] = list(tokens.scopes)
    conn.execute(
        update(_I)
        .where(_I.c.org_id == integration.org_id, _I.c.id == integration.id)
        .values(**values)
    )
    return expected_version + 1


def mark_needs_reauth(conn: Connection, integration: IntegrationInfo) -> bool:
    """Mark an active integration ``needs_reauth``; False if it was not active any more."""
    result = conn.execute(
        update(_I)
        .where(
            _I.c.org_id == integration.org_id,
            _I.c.id == integration.id,
            _I.c.status == IntegrationStatus.ACTIVE.value,
        )
        .values(status=IntegrationStatus.NEEDS_REAUTH.value, updated_at=utcnow())
    )
    return result.rowcount == 1


def disconnect(conn: Connection, integration: IntegrationInfo, *, purge: bool) -> int:
    """Delete the credential; mark the integration disconnected, or delete it with its data.

    Without ``purge`` synced data stays (accounts, entities, metrics, leads). With it, the
    integration row goes (its accounts, routes, state and runs with it, by cascade) and so
    do the org's rows of that platform in the data tables. Returns the data rows deleted.
    """
    org_id = integration.org_id
    conn.execute(delete(_C).where(_C.c.org_id == org_id, _C.c.integration_id == integration.id))
    if not purge:
        conn.execute(
            update(_I)
            .where(_I.c.org_id == org_id, _I.c.id == integration.id)
            .values(status=IntegrationStatus.DISCONNECTED.value, updated_at=utcnow())
        )
        return 0
    deleted = 0
    for table in DATA_TABLES:
        result = conn.execute(
            delete(table).where(table.c.org_id == org_id, table.c.platform == integration.platform)
        )
        deleted += max(result.rowcount, 0)
    for table in (tables.ad_accounts, tables.routes, tables.sync_state, tables.sync_runs):
        result = conn.execute(
            delete(table).where(table.c.org_id == org_id, table.c.integration_id == integration.id)
        )
        deleted += max(result.rowcount, 0)
    conn.execute(delete(_I).where(_I.c.org_id == org_id, _I.c.id == integration.id))
    return deleted


__all__ = [
    "DATA_TABLES",
    "IntegrationInfo",
    "StoredTokens",
    "disconnect",
    "find",
    "list_all",
    "load",
    "mark_needs_reauth",
    "save_connection",
    "write_tokens",
]
