"""natural key text columns compare bytewise (COLLATE "C")

External ids, platform slugs and stream names are identifiers, not words: comparing them
through the database's locale (libc ``strcoll``) makes every key lookup and index insert
slower and buys nothing. PostgreSQL only (SQLite compares text with BINARY already).
Changing a column's collation rebuilds the indexes on it, not the table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (column, varchar length) of the text columns of its natural key
# (self-contained on purpose: a migration must not change when the application code does)
KEY_TEXT_COLUMNS: dict[str, tuple[tuple[str, int], ...]] = {
    "ad_accounts": (("platform", 32), ("external_id", 255)),
    "campaigns": (("platform", 32), ("external_id", 255)),
    "ad_groups": (("platform", 32), ("external_id", 255)),
    "ads": (("platform", 32), ("external_id", 255)),
    "creatives": (("platform", 32), ("external_id", 255)),
    "daily_metrics": (("platform", 32), ("level", 16), ("entity_external_id", 255)),
    "leads": (("platform", 32), ("external_id", 255)),
    "routes": (("platform", 32), ("kind", 16), ("external_id", 255)),
    "sync_state": (("stream", 64), ("partition_key", 255)),
}


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    clause = f' COLLATE "{collation}"' if collation else ' COLLATE "default"'
    for table, columns in KEY_TEXT_COLUMNS.items():
        changes = ", ".join(
            f"ALTER COLUMN {column} TYPE varchar({length}){clause}" for column, length in columns
        )
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate(None)
