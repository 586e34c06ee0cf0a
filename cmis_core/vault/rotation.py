"""Key rotation over a credentials table: re-seal every row under the newest key.

Works on any SQLAlchemy table with the columns ``org_id``, ``id``, ``integration_id``,
``key_id``, ``ciphertext`` and ``version`` (``(org_id, id)`` unique, ids of any sortable
type), such as the store's ``credentials`` table. Rows are rewritten in batches, each batch its
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
from typing import Any

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
    """What one batch did: rows rewritten, rows skipped because another writer changed them.

    ``last`` is the ``(org_id, id)`` of the batch's last row, where the next batch starts.
    """

    rewritten: int
    conflicts: int
    last: tuple[Any, Any] | None


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
            remaining=dict(sorted(remaining.items())),
        )


def key_usage(conn: sa.Connection, table: sa.Table, *, org_id: Any = None) -> dict[str, int]:
    """How many rows use each key id (every id present, configured or not), by key id.

    ``org_id`` limits the count to one organisation.
    """
    query = sa.select(table.c.key_id, sa.func.count()).group_by(table.c.key_id)
    if org_id is not None:
        query = query.where(table.c.org_id == org_id)
    rows = conn.execute(query.order_by(table.c.key_id))
    return {str(key_id): int(count) for key_id, count in rows}


def rotate_batch(
    conn: sa.Connection,
    table: sa.Table,
    vault: Vault,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after: tuple[Any, Any] | None = None,
    org_id: Any = None,
) -> BatchResult:
    """Re-seal up to ``batch_size`` rows not under the newest key, ``(org_id, id)`` after ``after``.

    Runs inside the caller's transaction; ``org_id`` limits it to one organisation. A row
    no configured key opens raises :class:`~cmis_core.errors.UndecryptableCredential`, and
    the caller's transaction should roll back.
    """
    c = table.c
    query = sa.select(c.org_id, c.id, c.integration_id, c.key_id, c.ciphertext, c.version).where(
        c.key_id != vault.primary_key_id
    )
    if org_id is not None:
        query = query.where(c.org_id == org_id)
    if after is not None:
        query = query.where(sa.tuple_(c.org_id, c.id) > sa.tuple_(*after))
    rows = conn.execute(query.order_by(c.org_id, c.id).limit(batch_size)).all()
    params = []
    for row in rows:
        old = Sealed(key_id=row.key_id, ciphertext=bytes(row.ciphertext))
        new = vault.reencrypt(old, context=credential_context(row.org_id, row.integration_id))
        params.append(
            {
                "b_org_id": row.org_id,
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
            c.org_id == sa.bindparam("b_org_id"),
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
    last = (rows[-1].org_id, rows[-1].id) if rows else None
    return BatchResult(rewritten=rewritten, conflicts=len(params) - rewritten, last=last)


def rotate(
    begin: Begin,
    table: sa.Table,
    vault: Vault,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    org_id: Any = None,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> RotationReport:
    """Re-seal every row of ``table`` under ``vault``'s newest key, one transaction per batch.

    ``begin()`` opens a transaction and yields its connection (on PostgreSQL, inside the
    organisation's context, since credentials are under row-level security); ``org_id``
    limits the work to that organisation. Passes over the table repeat while rows were
    skipped because another writer changed them.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    rewritten = conflicts = 0
    for _ in range(MAX_PASSES):
        after: tuple[Any, Any] | None = None
        pass_conflicts = 0
        while True:
            with begin() as conn:
                batch = rotate_batch(
                    conn, table, vault, batch_size=batch_size, after=after, org_id=org_id
                )
            rewritten += batch.rewritten
            pass_conflicts += batch.conflicts
            if batch.last is None:
                break
            log.debug("vault.rotate_batch", rewritten=batch.rewritten, conflicts=batch.conflicts)
            if on_batch is not None:
                on_batch(batch)
            after = batch.last
        conflicts += pass_conflicts
        if pass_conflicts == 0:
            break
    with begin() as conn:
        usage = key_usage(conn, table, org_id=org_id)
    remaining = {k: n for k, n in usage.items() if k != vault.primary_key_id}
    return RotationReport(
        primary_key_id=vault.primary_key_id,
        rewritten=rewritten,
        conflicts=conflicts,
        remaining=remaining,
    )


def rotate_organizations(
    org_ids: Iterable[Any],
    begin_for: Callable[[Any], AbstractContextManager[sa.Connection]],
    table: sa.Table,
    vault: Vault,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[Any, BatchResult], None] | None = None,
) -> RotationReport:
    """:func:`rotate` organisation by organisation (row-level security on PostgreSQL).

    ``begin_for(org_id)`` opens a transaction inside that organisation's context (the
    store's ``Store.org``); each organisation's rows are also filtered by ``org_id``, so
    this works the same where nothing in the database keeps organisations apart (SQLite).
    """
    total = RotationReport(primary_key_id=vault.primary_key_id)
    for org_id in org_ids:

        def begin(org_id: Any = org_id) -> AbstractContextManager[sa.Connection]:
            return begin_for(org_id)

        def report(batch: BatchResult, org_id: Any = org_id) -> None:
            if on_batch is not None:
                on_batch(org_id, batch)

        total = total.merge(
            rotate(begin, table, vault, batch_size=batch_size, org_id=org_id, on_batch=report)
        )
    return total
