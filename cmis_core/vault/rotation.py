"""Key rotation over a credentials table: re-seal every row under the newest key.

Works on any SQLAlchemy table with the columns ``id``, ``org_id``, ``integration_id``,
``key_id``, ``ciphertext`` and ``version``. Rows are rewritten in batches, each batch its
own transaction, so a rotation killed at any point (even ``kill -9``) loses at most one
uncommitted batch, and running it again finishes the job: the work left is simply "rows
whose key id is not the newest".

A rewrite is a compare-and-set on ``(id, version, key_id, ciphertext)``: a row another
writer changed meanwhile is never overwritten, it is picked up again by the next pass.
Rotation keeps the plaintext, so it does not bump ``version`` (to the single-flight
refresh, whose waiters compare versions and whose writer compares and sets on it, a
rotated row is the same credential); ``updated_at`` is left alone for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager

import attrs
import sqlalchemy as sa
import structlog

from cmis_core.vault.cipher import Sealed, Vault, credential_context

log = structlog.get_logger(__name__)

DEFAULT_BATCH_SIZE = 500
MAX_PASSES = 5

Begin = Callable[[], AbstractContextManager[sa.Connection]]


@attrs.frozen(kw_only=True)
class BatchResult:
    """What one batch did: rows rewritten, rows skipped because another writer changed them."""

    rewritten: int
    conflicts: int
    last_id: str | None


@attrs.frozen(kw_only=True)
class RotationReport:
    """The outcome of a rotation: rows rewritten, conflicts met, rows left per old key id."""

    primary_key_id: str
    rewritten: int = 0
    conflicts: int = 0
    remaining: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def complete(self) -> bool:
        """True when no row uses an old key any more."""
        return not any(self.remaining.values())

    def merge(self, other: RotationReport) -> RotationReport:
        """The sum of two reports (e.g. of two organisations)."""
        remaining = dict(self.remaining)
        for key_id, count in other.remaining.items():
            remaining[key_id] = remaining.get(key_id, 0) + count
        return RotationReport(
            primary_key_id=self.primary_key_id,
            rewritten=self.rewritten + other.rewritten,
            conflicts=self.conflicts + other.conflicts,
            remaining=remaining,
        )


def key_usage(conn: sa.Connection, table: sa.Table) -> dict[str, int]:
    """How many rows of ``table`` use each key id (every key id present, configured or not)."""
    rows = conn.execute(
        sa.select(table.c.key_id, sa.func.count()).group_by(table.c.key_id).order_by(table.c.key_id)
    )
    return {str(key_id): int(count) for key_id, count in rows}


def rotate_batch(
    conn: sa.Connection,
    table: sa.Table,
    vault: Vault,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_id: str | None = None,
) -> BatchResult:
    """Re-seal up to ``batch_size`` rows not under the newest key, ids after ``after_id``.

    Runs inside the caller's transaction. A row no configured key opens raises
    :class:`~cmis_core.errors.UndecryptableCredential` and nothing of the batch is kept.
    """
    c = table.c
    query = sa.select(c.id, c.org_id, c.integration_id, c.key_id, c.ciphertext, c.version).where(
        c.key_id != vault.primary_key_id
    )
    if after_id is not None:
        query = query.where(c.id > after_id)
    rows = conn.execute(query.order_by(c.id).limit(batch_size)).all()
    params = []
    for row in rows:
        old = Sealed(key_id=row.key_id, ciphertext=bytes(row.ciphertext))
        new = vault.reencrypt(old, context=credential_context(row.org_id, row.integration_id))
        params.append(
            {
                "b_id": row.id,
                "b_version": row.version,
                "b_key_id": old.key_id,
                "b_ciphertext": old.ciphertext,
                "key_id": new.key_id,
                "ciphertext": new.ciphertext,
            }
        )
    statement = (
        sa.update(table)
        .where(
            c.id == sa.bindparam("b_id"),
            c.version == sa.bindparam("b_version"),
            c.key_id == sa.bindparam("b_key_id"),
            c.ciphertext == sa.bindparam("b_ciphertext"),
        )
        .values(key_id=sa.bindparam("key_id"), ciphertext=sa.bindparam("ciphertext"))
    )
    if params and conn.dialect.supports_sane_multi_rowcount:
        rewritten = conn.execute(statement, params).rowcount
    else:  # one statement per row, to count what was rewritten
        rewritten = sum(conn.execute(statement, p).rowcount for p in params)
    conflicts = len(params) - rewritten
    return BatchResult(
        rewritten=rewritten, conflicts=conflicts, last_id=str(rows[-1].id) if rows else None
    )


def rotate(
    begin: Begin,
    table: sa.Table,
    vault: Vault,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> RotationReport:
    """Re-seal every row of ``table`` under ``vault``'s newest key, one transaction per batch.

    ``begin()`` opens a transaction and yields its connection (on PostgreSQL, inside the
    organisation's context, since credentials are under row-level security). Passes over
    the table repeat while rows were skipped because another writer changed them.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    rewritten = conflicts = 0
    for _ in range(MAX_PASSES):
        after: str | None = None
        pass_conflicts = 0
        while True:
            with begin() as conn:
                batch = rotate_batch(conn, table, vault, batch_size=batch_size, after_id=after)
            rewritten += batch.rewritten
            pass_conflicts += batch.conflicts
            if batch.last_id is None:
                break
            log.debug("vault.rotate_batch", rewritten=batch.rewritten, conflicts=batch.conflicts)
            if on_batch is not None:
                on_batch(batch)
            after = batch.last_id
        conflicts += pass_conflicts
        if pass_conflicts == 0:
            break
    with begin() as conn:
        usage = key_usage(conn, table)
    remaining = {k: n for k, n in usage.items() if k != vault.primary_key_id}
    return RotationReport(
        primary_key_id=vault.primary_key_id,
        rewritten=rewritten,
        conflicts=conflicts,
        remaining=remaining,
    )


def rotate_organizations(
    org_ids: Iterable[str],
    begin_for: Callable[[str], AbstractContextManager[sa.Connection]],
    table: sa.Table,
    vault: Vault,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[str, BatchResult], None] | None = None,
) -> RotationReport:
    """:func:`rotate` organisation by organisation (row-level security on PostgreSQL).

    ``begin_for(org_id)`` opens a transaction inside that organisation's context.
    """
    total = RotationReport(primary_key_id=vault.primary_key_id)
    for org_id in org_ids:

        def begin(org_id: str = org_id) -> AbstractContextManager[sa.Connection]:
            return begin_for(org_id)

        def report(batch: BatchResult, org_id: str = org_id) -> None:
            if on_batch is not None:
                on_batch(org_id, batch)

        total = total.merge(rotate(begin, table, vault, batch_size=batch_size, on_batch=report))
    return total
