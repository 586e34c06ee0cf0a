"""Stream records onto the common model's tables, and the transactions that store them.

A stream yields records in the *record* shape the conformance kit checks
(``external_id``, ``account_id``, ``campaign_id``, ``timezone``, money in ``*_micros``);
:func:`to_row` turns one into a row of its table (``account_external_id``,
``campaign_external_id``, ``time_zone``, ...). Fields the table has no column for stay
only in ``raw`` (the platform's own record). Money must already be integer micros: a
float or a string in a ``*_micros`` field is refused, never rounded here.

:func:`write_batch` is the one transaction that stores a batch: the rows of some pages,
grouped by table and written with the bulk :func:`~cmis_core.store.upsert`, together with
the stream state those pages carry (``Page.state``), the partitions they complete, and the
webhook routes they make known (:func:`routes_of`): every ad account stored (kind
``ad_account``), the ``page_id`` and ``form_id`` of every lead (``page``, ``form``), and
the pairs pages list in ``Page.routes``. A route names the integration being synced; when
the same id was routed elsewhere before, the last writer wins (in the same organisation
the row is taken over; across organisations ``Store.route`` picks the route changed most
recently).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
from sqlalchemy import Connection, Table, and_, delete, select, update

from cmis_core.errors import Fatal
from cmis_core.store import NATURAL_KEYS, current_org_id, tables, upsert
from cmis_core.store.records import UpsertResult
from cmis_core.store.tables import ROUTE_KINDS
from cmis_core.types import EntityKind

Record = Mapping[str, Any]
Row = dict[str, Any]

TABLES: dict[EntityKind, Table] = {
    EntityKind.AD_ACCOUNT: tables.ad_accounts,
    EntityKind.CAMPAIGN: tables.campaigns,
    EntityKind.AD_GROUP: tables.ad_groups,
    EntityKind.AD: tables.ads,
    EntityKind.CREATIVE: tables.creatives,
    EntityKind.DAILY_METRIC: tables.daily_metrics,
    EntityKind.LEAD: tables.leads,
}

# record field -> column, where the names differ (first match wins for each column)
RENAMES: dict[str, str] = {
    "account_id": "account_external_id",
    "campaign_id": "campaign_external_id",
    "ad_group_id": "ad_group_external_id",
    "creative_id": "creative_external_id",
    "video_id": "video_external_id",
    "timezone": "time_zone",
    "updated_at": "updated_time",  # a platform's change time, never the bookkeeping column
    "created_at": "created_time",
    "attribution_setting": "attribution",
}
# tables whose foreign ids keep their record names (leads: ad_id, campaign_id, ...)
KEEP_NAMES = {EntityKind.LEAD: {"campaign_id", "ad_group_id", "ad_id", "form_id", "page_id"}}
MANAGED = frozenset({"org_id", "platform", "created_at", "updated_at", "integration_id"})
NOT_FROM_STREAMS = {EntityKind.AD_ACCOUNT: frozenset({"sync_enabled"})}


def _columns(entity: EntityKind) -> tuple[str, ...]:
    table = TABLES[entity]
    skip = MANAGED | NOT_FROM_STREAMS.get(entity, frozenset())
    return tuple(c.name for c in table.columns if c.name not in skip)


COLUMNS: dict[EntityKind, tuple[str, ...]] = {kind: _columns(kind) for kind in TABLES}


def _micros(name: str, value: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise Fatal(
        f"{name} is money in integer micros; the stream sent {type(value).__name__} "
        "(convert with Decimal in the plugin's mapper)"
    )


def _decimal(name: str, value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise Fatal(f"{name} must be a Decimal (or an int or a numeric string), got {value!r}")


def _datetime(name: str, value: Any) -> dt.datetime | None:
    if value is None or (isinstance(value, dt.datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise Fatal(f"{name} must be a timezone-aware datetime, got {value!r}")


class Mapper:
    """Turns records of one entity kind into rows of its table (hot path: kept lean)."""

    def __init__(
        self,
        entity: EntityKind,
        *,
        platform: str,
        integration_id: int,
        columns: tuple[str, ...],
        renames: Mapping[str, str],
    ) -> None:
        self.entity = entity
        self.platform = platform
        self.integration_id = integration_id
        self.columns = columns
        self.renames = dict(renames)
        self._blank: Row = dict.fromkeys(columns)
        self._where: dict[str, str | None] = {}  # record field -> column (None: not stored)
        self._micros = [c for c in columns if c.endswith("_micros")]
        self._times = [c for c in columns if c.endswith("_time")]
        self._key = "entity_external_id" if entity is EntityKind.DAILY_METRIC else "external_id"
        self._below_account = "account_external_id" in columns

    def __repr__(self) -> str:
        return f"<Mapper {self.entity} of {self.platform}>"

    @classmethod
    def for_entity(cls, entity: EntityKind, *, platform: str, integration_id: int) -> Mapper:
        keep = KEEP_NAMES.get(entity, set())
        renames = {
            field: column
            for field, column in RENAMES.items()
            if field not in keep and column in COLUMNS[entity]
        }
        if entity is EntityKind.DAILY_METRIC:
            renames["external_id"] = "entity_external_id"
        return cls(
            entity,
            platform=platform,
            integration_id=integration_id,
            columns=COLUMNS[entity],
            renames=renames,
        )

    def _column(self, field: str) -> str | None:
        column = self.renames.get(field, field)
        found = column if column in self._blank else None
        self._where[field] = found
        return found

    def to_row(self, record: Record) -> Row:
        """The table row of ``record`` (``Fatal`` when a required field is missing or wrong)."""
        row = self._blank.copy()
        where = self._where
        for field, value in record.items():
            column = where[field] if field in where else self._column(field)
            if column is not None and (field == column or row[column] is None):
                row[column] = value
        key = row[self._key]
        if not isinstance(key, str) or not key:
            raise Fatal(f"a {self.entity} record has no external_id")
        if self._below_account and not row["account_external_id"]:
            raise Fatal(f"{self.entity} {key} has no account_id")
        for column in self._micros:
            value = row[column]
            if value is not None and type(value) is not int:
                row[column] = _micros(column, value)
        for column in self._times:
            value = row[column]
            if value is not None and not (type(value) is dt.datetime and value.tzinfo is not None):
                row[column] = _datetime(column, value)
        if self.entity is EntityKind.DAILY_METRIC:
            date = row["date"]
            if type(date) is not dt.date:
                row["date"] = _date(date)
            conversions = row["conversions"]
            if conversions is not None and type(conversions) is not Decimal:
                row["conversions"] = _decimal("conversions", conversions)
            for name in ("impressions", "clicks", "spend_micros"):
                if row[name] is None:
                    row[name] = 0
        elif self.entity is EntityKind.LEAD and row["is_test"] is None:
            row["is_test"] = False
        elif self.entity is EntityKind.AD_ACCOUNT:
            row["integration_id"] = self.integration_id
        row["platform"] = self.platform
        return row


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise Fatal(f"a daily metric's date must be a datetime.date, got {value!r}")


def natural_key(entity: EntityKind) -> tuple[str, ...]:
    """The columns a table's rows are upserted on (``org_id`` added by the upsert)."""
    return NATURAL_KEYS[TABLES[entity].name]


# ----------------------------------------------------------------------------- batches


Route = tuple[str, str]  # (kind, external_id)
# lead columns whose ids route webhooks, and the route kind of each
LEAD_ROUTES = (("page_id", "page"), ("form_id", "form"))
MAX_ROUTE_ID = 255


def check_routes(routes: Iterable[Any]) -> list[Route]:
    """``Page.routes`` as ``(kind, external_id)`` text pairs; ``Fatal`` for a bad one."""
    out: list[Route] = []
    for item in routes:
        try:
            kind, external_id = item
        except (TypeError, ValueError):
            raise Fatal(f"a route is a (kind, external_id) pair, got {item!r}") from None
        if kind not in ROUTE_KINDS:
            raise Fatal(f"route kind must be one of {', '.join(ROUTE_KINDS)}, got {kind!r}")
        if isinstance(external_id, bool) or not isinstance(external_id, str | int):
            raise Fatal(f"a {kind} route needs a text id, got {type(external_id).__name__}")
        text = str(external_id)
        if not text or len(text) > MAX_ROUTE_ID:
            raise Fatal(f"a {kind} route id must be 1 to {MAX_ROUTE_ID} characters")
        out.append((kind, text))
    return out


@attrs.define(kw_only=True)
class Batch:
    """What one transaction stores: rows by entity, state changes, partitions completed,
    and routes pages named (``Page.routes``, already checked)."""

    rows: dict[EntityKind, list[Row]] = attrs.field(factory=dict)
    # (stream, state key) -> value; None deletes the key
    state: dict[tuple[str, str], Any] = attrs.field(factory=dict)
    routes: dict[Route, None] = attrs.field(factory=dict)  # an ordered set

    def add_rows(self, entity: EntityKind, rows: Iterable[Row]) -> None:
        self.rows.setdefault(entity, []).extend(rows)

    def add_routes(self, routes: Iterable[Route]) -> None:
        self.routes.update(dict.fromkeys(routes))

    def add_state(self, stream: str, changes: Mapping[str, Any]) -> None:
        for key, value in changes.items():
            self.state[(stream, key)] = value

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def write_batch(
    conn: Connection,
    batch: Batch,
    *,
    integration_id: int,
    platform: str,
    on_new_accounts: Callable[[Connection, list[str]], None] | None = None,
) -> dict[EntityKind, UpsertResult]:
    """Store ``batch`` in the org transaction ``conn``: rows first, then the state."""
    results: dict[EntityKind, UpsertResult] = {}
    for entity, rows in batch.rows.items():
        if not rows:
            continue
        table = TABLES[entity]
        new: list[str] = []
        if entity is EntityKind.AD_ACCOUNT and on_new_accounts is not None:
            ids = {r["external_id"] for r in rows}
            known = set(
                conn.execute(
                    select(table.c.external_id).where(
                        table.c.org_id == current_org_id(conn),
                        table.c.platform == platform,
                        table.c.external_id.in_(ids),
                    )
                ).scalars()
            )
            new = sorted(ids - known)
        results[entity] = upsert(conn, table, rows, natural_key(entity))
        if new and on_new_accounts is not None:
            on_new_accounts(conn, new)
    write_routes(conn, routes_of(batch), integration_id=integration_id, platform=platform)
    write_state(conn, batch.state, integration_id=integration_id)
    return results


def routes_of(batch: Batch) -> list[Route]:
    """The routes ``batch`` makes known: its ad accounts, its leads' pages and forms, and
    the pages' own ``routes``; each once, sorted (a stable lock order)."""
    found: set[Route] = set(batch.routes)
    for row in batch.rows.get(EntityKind.AD_ACCOUNT, ()):
        found.add(("ad_account", str(row["external_id"])))
    for row in batch.rows.get(EntityKind.LEAD, ()):
        for column, kind in LEAD_ROUTES:
            value = row.get(column)
            if value is not None and value != "":
                found.add((kind, str(value)))
    return sorted(r for r in found if len(r[1]) <= MAX_ROUTE_ID)


def write_routes(
    conn: Connection, routes: Iterable[Route], *, integration_id: int, platform: str
) -> UpsertResult:
    """Route webhooks about each ``(kind, external_id)`` to ``integration_id``.

    An unchanged route is not written (its ``updated_at`` stays); a route of this
    organisation held by another integration is taken over (last writer wins).
    """
    rows = [
        {
            "platform": platform,
            "kind": kind,
            "external_id": external_id,
            "integration_id": integration_id,
        }
        for kind, external_id in routes
    ]
    if not rows:
        return UpsertResult()
    return upsert(conn, tables.routes, rows, NATURAL_KEYS["routes"])


def write_state(
    conn: Connection, changes: Mapping[tuple[str, str], Any], *, integration_id: int
) -> None:
    """Apply state changes: one ``sync_state`` row per (stream, key); ``None`` deletes it."""
    if not changes:
        return
    table = tables.sync_state
    org_id = current_org_id(conn)
    keep = [
        {"integration_id": integration_id, "stream": s, "partition_key": k, "state": v}
        for (s, k), v in changes.items()
        if v is not None
    ]
    gone = [(s, k) for (s, k), v in changes.items() if v is None]
    if keep:
        upsert(conn, table, keep, NATURAL_KEYS["sync_state"])
    for stream, key in gone:
        conn.execute(
            delete(table).where(
                and_(
                    table.c.org_id == org_id,
                    table.c.integration_id == integration_id,
                    table.c.stream == stream,
                    table.c.partition_key == key,
                )
            )
        )


def disable_accounts(platform: str) -> Callable[[Connection, list[str]], None]:
    """An ``on_new_accounts`` hook that leaves newly found accounts out of sync."""

    def hook(conn: Connection, external_ids: list[str]) -> None:
        table = tables.ad_accounts
        conn.execute(
            update(table)
            .where(
                table.c.org_id == current_org_id(conn),
                table.c.platform == platform,
                table.c.external_id.in_(external_ids),
            )
            .values(sync_enabled=False)
        )

    return hook
