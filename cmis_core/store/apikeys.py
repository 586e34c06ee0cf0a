"""API keys (a system table): only a public prefix and the SHA-256 of the key are stored.

A key reads ``cmis_<prefix>_<secret>``: a 10-hex-digit prefix to find the row, and 32
random bytes (URL-safe base64). A key has 256 bits of entropy, so one fast SHA-256 is
enough (no slow password hash: there is nothing to brute-force).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import Connection, func, insert, select, update

from cmis_core.errors import UsageError
from cmis_core.store.records import ApiKeyInfo
from cmis_core.store.tables import api_keys, organizations

_KEY = re.compile(r"^cmis_([0-9a-f]{10})_([A-Za-z0-9_-]{43})$")
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh ``(prefix, key)``."""
    prefix = secrets.token_hex(5)
    return prefix, f"cmis_{prefix}_{secrets.token_urlsafe(32)}"


def create_api_key(conn: Connection, org_id: int, name: str | None = None) -> tuple[int, str]:
    """Store a new key of ``org_id``; returns ``(id, key)``; the key is never stored."""
    if conn.execute(select(organizations.c.id).where(organizations.c.id == org_id)).first() is None:
        raise UsageError(f"no organisation with id {org_id}")
    if name is not None and len(name) > 200:
        raise UsageError("an API key name has at most 200 characters")
    prefix, key = new_key()
    key_id = conn.execute(
        insert(api_keys)
        .values(org_id=org_id, name=name, prefix=prefix, key_hash=hash_key(key))
        .returning(api_keys.c.id)
    ).scalar_one()
    return int(key_id), key


def find_api_key(conn: Connection, key: str) -> tuple[int, int, dt.datetime | None] | None:
    """``(key id, org id, last used)`` of a valid, unrevoked ``key``; ``None`` otherwise."""
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        return None
    row = conn.execute(
        select(
            api_keys.c.id, api_keys.c.org_id, api_keys.c.key_hash, api_keys.c.last_used_at
        ).where(api_keys.c.prefix == match.group(1), api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    return int(row.id), int(row.org_id), row.last_used_at


def touch_api_key(conn: Connection, key_id: int, now: dt.datetime) -> None:
    """Record that key ``key_id`` was used at ``now``."""
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


def needs_touch(last_used_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether ``last_used_at`` is old enough to be written again."""
    return last_used_at is None or now - last_used_at >= TOUCH_EVERY


def revoke_api_key(conn: Connection, key_id: int) -> None:
    """Revoke key ``key_id``; revoking twice keeps the first time; unknown id: UsageError."""
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(revoked_at=func.coalesce(api_keys.c.revoked_at, dt.datetime.now(dt.UTC)))
    )
    if result.rowcount == 0:
        raise UsageError(f"no API key with id {key_id}")


def list_api_keys(conn: Connection, org_id: int) -> list[ApiKeyInfo]:
    """The keys of ``org_id``, oldest first."""
    rows = conn.execute(select(api_keys).where(api_keys.c.org_id == org_id).order_by(api_keys.c.id))
    return [ApiKeyInfo.from_row(row._mapping) for row in rows]
