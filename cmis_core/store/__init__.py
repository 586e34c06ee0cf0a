"""Storage: tables of the common model, migrations, organisations kept apart, bulk upsert.

Open the store with :func:`open_store`, then work in an org transaction
(:meth:`Store.org`) or a system transaction (:meth:`Store.system`); write in bulk with
:func:`upsert`. Table definitions are in :mod:`cmis_core.store.tables`.
"""

from __future__ import annotations

from cmis_core.store import tables
from cmis_core.store.bulk import upsert
from cmis_core.store.records import ApiKeyInfo, DueIntegration, Org, RouteTarget, UpsertResult
from cmis_core.store.schema import UpgradeResult, head_revision, upgrade
from cmis_core.store.store import Store, current_org_id, open_store, scoped
from cmis_core.store.tables import NATURAL_KEYS, SYSTEM_TABLES, TENANT_TABLES, metadata

__all__ = [
    "NATURAL_KEYS",
    "SYSTEM_TABLES",
    "TENANT_TABLES",
    "ApiKeyInfo",
    "DueIntegration",
    "Org",
    "RouteTarget",
    "Store",
    "UpgradeResult",
    "UpsertResult",
    "current_org_id",
    "head_revision",
    "metadata",
    "open_store",
    "scoped",
    "tables",
    "upgrade",
    "upsert",
]
