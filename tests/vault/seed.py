"""Credentials in a real store: organisations, integrations and sealed token sets."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from cmis_core.store import Store, tables
from cmis_core.types import TokenSet
from cmis_core.vault import Sealed, Vault


def token_for(org_id: int, integration_id: int) -> TokenSet:
    return TokenSet(access_token=f"tok-{org_id}-{integration_id}", refresh_token="r")


def seed(store: Store, vault: Vault, *, orgs: int, per_org: int) -> list[int]:
    """``orgs`` organisations with ``per_org`` integrations each, every one with a credential."""
    org_ids = []
    for n in range(orgs):
        org = store.create_org(f"org-{n}-{secrets.token_hex(3)}")
        org_ids.append(org.id)
        with store.org(org.id) as conn:
            conn.execute(
                sa.insert(tables.integrations),
                [{"org_id": org.id, "platform": f"p{i:05d}"} for i in range(per_org)],
            )
            integration_ids = conn.execute(
                sa.select(tables.integrations.c.id).where(tables.integrations.c.org_id == org.id)
            ).scalars()
            rows = []
            for integration_id in integration_ids:
                sealed = vault.seal_tokens(
                    token_for(org.id, integration_id), org_id=org.id, integration_id=integration_id
                )
                rows.append(
                    {
                        "org_id": org.id,
                        "integration_id": integration_id,
                        "key_id": sealed.key_id,
                        "ciphertext": sealed.ciphertext,
                    }
                )
            conn.execute(sa.insert(tables.credentials), rows)
    return org_ids


def open_every_credential(store: Store, vault: Vault, org_ids: list[int]) -> int:
    """Open every credential with ``vault``, checking its tokens; the number opened."""
    opened = 0
    c = tables.credentials.c
    for org_id in org_ids:
        with store.org(org_id, write=False) as conn:
            rows = conn.execute(
                sa.select(c.integration_id, c.key_id, c.ciphertext).where(c.org_id == org_id)
            ).all()
        for row in rows:
            sealed = Sealed(key_id=row.key_id, ciphertext=bytes(row.ciphertext))
            tokens = vault.open_tokens(sealed, org_id=org_id, integration_id=row.integration_id)
            assert tokens == token_for(org_id, row.integration_id)
            opened += 1
    return opened
