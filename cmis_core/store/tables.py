"""The common model: sqlmodel table definitions (the one place they live).

System tables are read before an organisation is known; tenant tables carry ``org_id``,
start every unique key with it and, on PostgreSQL, are isolated by row-level security.
Columns are documented in ``docs/schema.md``. Write through SQLAlchemy Core
(``Model.__table__``, :data:`TENANT_TABLES`); the classes are for definitions and simple
reads. Money is integer micros of the account currency.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlmodel import Field, SQLModel

from cmis_core.store.columns import DecimalType, IdType, JsonType, UtcDateTime

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = SQLModel.metadata

INTEGRATION_STATUSES = ("active", "needs_reauth", "disconnected")
ENTITY_STATUSES = ("active", "paused", "archived", "deleted")
METRIC_LEVELS = ("account", "campaign", "ad_group", "ad")
ROUTE_KINDS = ("page", "ad_account", "form", "customer")
INBOX_STATUSES = ("received", "processed", "unroutable", "failed")
RUN_STATUSES = ("running", "succeeded", "partial", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --- column helpers (a Column object belongs to one table, so each call makes a new one)


def _id() -> Any:
    return Field(
        default=None, sa_column=Column("id", IdType, Identity(always=True), primary_key=True)
    )


def _tenant_id() -> Any:
    # part of the primary key (org_id, id): see the __table_args__ of the table
    return Field(
        default=None, sa_column=Column("id", IdType, Identity(always=True), nullable=False)
    )


def _org_pk() -> Any:
    return Field(sa_column=Column("org_id", BigInteger, primary_key=True, autoincrement=False))


def _org_id() -> Any:
    return Field(sa_column=Column("org_id", BigInteger, nullable=False))


def _str(length: int, *, null: bool = True, pk: bool = False, default: str | None = None) -> Any:
    return Field(
        default=default if null or default is not None else ...,
        sa_column=Column(
            String(length),
            nullable=null and not pk,
            primary_key=pk,
            server_default=default,
        ),
    )


def _text() -> Any:
    return Field(default=None, sa_column=Column(Text))


def _ts(*, null: bool = True, now: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(UtcDateTime(), nullable=null, server_default=func.now() if now else None),
    )


def _json(*, null: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JsonType, nullable=null))


def _bigint(*, default: int | None = None) -> Any:
    return Field(
        default=default,
        sa_column=Column(
            BigInteger,
            nullable=default is None,
            server_default=None if default is None else str(default),
        ),
    )


def _int(*, default: int) -> Any:
    return Field(
        default=default,
        sa_column=Column(Integer, nullable=False, server_default=str(default)),
    )


def _bool(*, default: bool) -> Any:
    return Field(
        default=default,
        sa_column=Column(Boolean, nullable=False, server_default=true() if default else false()),
    )


def _integration_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["org_id", "integration_id"],
        ["integrations.org_id", "integrations.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_integration",
    )


def _org_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["org_id"], ["organizations.id"], ondelete="CASCADE", name=f"fk_{table}_org"
    )


# --- system tables


class Organization(SQLModel, table=True):
    """An organisation (tenant); ``slug`` names it in the CLI and in URLs."""

    __tablename__ = "organizations"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = _id()
    slug: str = Field(sa_column=Column(String(63), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: dt.datetime | None = _ts(null=False, now=True)


class ApiKey(SQLModel, table=True):
    """An API key of an organisation: only a public prefix and a SHA-256 hash are kept."""

    __tablename__ = "api_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = _id()
    org_id: int = Field(
        sa_column=Column(
            BigInteger,
            ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    name: str | None = _str(200)
    prefix: str = Field(sa_column=Column(String(16), nullable=False, unique=True))
    key_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: dt.datetime | None = _ts(null=False, now=True)
    last_used_at: dt.datetime | None = _ts()
    revoked_at: dt.datetime | None = _ts()


class OAuthState(SQLModel, table=True):
    """A single-use, expiring OAuth state bound to an organisation and a platform."""

    __tablename__ = "oauth_states"
    __table_args__ = (
        Index("ix_oauth_states_expires_at", "expires_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = _id()
    state_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    org_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
        )
    )
    platform: str = Field(sa_column=Column(String(32), nullable=False))
    redirect_uri: str = Field(sa_column=Column(Text, nullable=False))
    key_id: str | None = _str(64)
    verifier_ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    expires_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    used_at: dt.datetime | None = _ts()
    created_at: dt.datetime | None = _ts(null=False, now=True)


class WebhookEventRow(SQLModel, table=True):
    """The durable webhook inbox: one row per delivery, processed later exactly once."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("platform", "dedupe_key"),
        CheckConstraint(_in("status", INBOX_STATUSES), name="status"),
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = _id()
    platform: str = Field(sa_column=Column(String(32), nullable=False))
    dedupe_key: str = Field(sa_column=Column(String(255), nullable=False))
    received_at: dt.datetime | None = _ts(null=False, now=True)
    headers: dict[str, Any] | None = _json(null=False)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    status: str = _str(16, null=False, default="received")
    attempts: int = _int(default=0)
    next_attempt_at: dt.datetime | None = _ts()
    processed_at: dt.datetime | None = _ts()
    error: str | None = _text()
    org_id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, ForeignKey("organizations.id", ondelete="SET NULL")),
    )
    integration_id: int | None = _bigint()


class Lease(SQLModel, table=True):
    """A named lease (single-flight refresh, SQLite sync lock): holder, expiry, version."""

    __tablename__ = "leases"

    name: str = Field(sa_column=Column(String(200), primary_key=True))
    owner: str | None = _str(200)
    until: dt.datetime | None = _ts()
    version: int = _bigint(default=0)


# --- tenant tables


class Integration(SQLModel, table=True):
    """An organisation's connection to one platform (one per org and platform in v1)."""

    __tablename__ = "integrations"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "id"),
        UniqueConstraint("org_id", "platform"),
        CheckConstraint(_in("status", INTEGRATION_STATUSES), name="status"),
        _org_fk("integrations"),
        Index("ix_integrations_next_sync_at", "next_sync_at"),
    )

    org_id: int = _org_id()
    id: int | None = _tenant_id()
    platform: str = Field(sa_column=Column(String(32), nullable=False))
    status: str = _str(16, null=False, default="active")
    external_user_id: str | None = _str(255)
    external_user_name: str | None = _str(255)
    scopes: list[str] | None = _json()
    access_expires_at: dt.datetime | None = _ts()
    refresh_expires_at: dt.datetime | None = _ts()
    sync_interval_seconds: int = _int(default=3600)
    next_sync_at: dt.datetime | None = _ts()
    queued_at: dt.datetime | None = _ts()
    last_sync_at: dt.datetime | None = _ts()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class Credential(SQLModel, table=True):
    """The encrypted tokens of an integration, kept apart so they never serialise by accident."""

    __tablename__ = "credentials"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "id"),
        UniqueConstraint("org_id", "integration_id"),
        _integration_fk("credentials"),
    )

    org_id: int = _org_id()
    id: int | None = _tenant_id()
    integration_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    key_id: str = Field(sa_column=Column(String(64), nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    version: int = _bigint(default=1)
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class AdAccount(SQLModel, table=True):
    """An ad account (Meta act_, Google customer, TikTok advertiser, ...)."""

    __tablename__ = "ad_accounts"
    __table_args__ = (
        CheckConstraint(_in("status", ENTITY_STATUSES), name="status"),
        _integration_fk("ad_accounts"),
    )

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    integration_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    name: str | None = _str(500)
    currency: str | None = _str(3)
    time_zone: str | None = _str(64)
    status: str | None = _str(16)
    platform_status: str | None = _str(64)
    sync_enabled: bool = _bool(default=True)
    raw: dict[str, Any] | None = _json()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class Campaign(SQLModel, table=True):
    """A campaign."""

    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(_in("status", ENTITY_STATUSES), name="status"),)

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    account_external_id: str = _str(255, null=False)
    name: str | None = _str(500)
    status: str | None = _str(16)
    platform_status: str | None = _str(64)
    objective: str | None = _str(64)
    daily_budget_micros: int | None = _bigint()
    lifetime_budget_micros: int | None = _bigint()
    created_time: dt.datetime | None = _ts()
    updated_time: dt.datetime | None = _ts()
    raw: dict[str, Any] | None = _json()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class AdGroup(SQLModel, table=True):
    """An ad group (Meta ad set, LinkedIn campaign, X line item, Snapchat ad squad)."""

    __tablename__ = "ad_groups"
    __table_args__ = (CheckConstraint(_in("status", ENTITY_STATUSES), name="status"),)

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    account_external_id: str = _str(255, null=False)
    campaign_external_id: str | None = _str(255)
    name: str | None = _str(500)
    status: str | None = _str(16)
    platform_status: str | None = _str(64)
    daily_budget_micros: int | None = _bigint()
    lifetime_budget_micros: int | None = _bigint()
    created_time: dt.datetime | None = _ts()
    updated_time: dt.datetime | None = _ts()
    raw: dict[str, Any] | None = _json()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class Ad(SQLModel, table=True):
    """An ad."""

    __tablename__ = "ads"
    __table_args__ = (CheckConstraint(_in("status", ENTITY_STATUSES), name="status"),)

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    account_external_id: str = _str(255, null=False)
    campaign_external_id: str | None = _str(255)
    ad_group_external_id: str | None = _str(255)
    creative_external_id: str | None = _str(255)
    name: str | None = _str(500)
    status: str | None = _str(16)
    platform_status: str | None = _str(64)
    created_time: dt.datetime | None = _ts()
    updated_time: dt.datetime | None = _ts()
    raw: dict[str, Any] | None = _json()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class Creative(SQLModel, table=True):
    """A creative (the content an ad shows)."""

    __tablename__ = "creatives"
    __table_args__ = (CheckConstraint(_in("status", ENTITY_STATUSES), name="status"),)

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    account_external_id: str = _str(255, null=False)
    name: str | None = _str(500)
    status: str | None = _str(16)
    platform_status: str | None = _str(64)
    title: str | None = _text()
    body: str | None = _text()
    link_url: str | None = _text()
    image_url: str | None = _text()
    video_external_id: str | None = _str(255)
    call_to_action: str | None = _str(64)
    created_time: dt.datetime | None = _ts()
    updated_time: dt.datetime | None = _ts()
    raw: dict[str, Any] | None = _json()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class DailyMetric(SQLModel, table=True):
    """One day of delivery for one entity, the day in the account's time zone."""

    __tablename__ = "daily_metrics"
    __table_args__ = (CheckConstraint(_in("level", METRIC_LEVELS), name="level"),)

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    level: str = _str(16, null=False, pk=True)
    entity_external_id: str = _str(255, null=False, pk=True)
    date: dt.date = Field(sa_column=Column(Date, primary_key=True))
    account_external_id: str = _str(255, null=False)
    currency: str | None = _str(3)
    impressions: int = _bigint(default=0)
    clicks: int = _bigint(default=0)
    spend_micros: int = _bigint(default=0)
    conversions: decimal.Decimal | None = Field(
        default=None, sa_column=Column(DecimalType(), nullable=True)
    )
    conversions_value_micros: int | None = _bigint()
    attribution: str | None = _str(64)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class Lead(SQLModel, table=True):
    """A lead-form submission; ``fields`` holds personal data."""

    __tablename__ = "leads"

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    form_id: str | None = _str(255)
    ad_id: str | None = _str(255)
    ad_group_id: str | None = _str(255)
    campaign_id: str | None = _str(255)
    page_id: str | None = _str(255)
    created_time: dt.datetime | None = _ts()
    fields: dict[str, Any] | None = _json()
    is_test: bool = _bool(default=False)
    raw: dict[str, Any] | None = _json()
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class Route(SQLModel, table=True):
    """Which integration receives webhooks for a page, ad account, form or customer."""

    __tablename__ = "routes"
    __table_args__ = (
        CheckConstraint(_in("kind", ROUTE_KINDS), name="kind"),
        _integration_fk("routes"),
        Index("ix_routes_platform_kind_external_id", "platform", "kind", "external_id"),
    )

    org_id: int = _org_pk()
    platform: str = _str(32, null=False, pk=True)
    kind: str = _str(16, null=False, pk=True)
    external_id: str = _str(255, null=False, pk=True)
    integration_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: dt.datetime | None = _ts(null=False, now=True)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class SyncState(SQLModel, table=True):
    """Sync progress per integration, stream and partition (watermarks, done partitions)."""

    __tablename__ = "sync_state"
    __table_args__ = (_integration_fk("sync_state"),)

    org_id: int = _org_pk()
    integration_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    stream: str = _str(64, null=False, pk=True)
    partition_key: str = _str(255, null=False, pk=True)
    state: dict[str, Any] | None = _json(null=False)
    updated_at: dt.datetime | None = _ts(null=False, now=True)


class SyncRun(SQLModel, table=True):
    """One sync run of an integration: when, how it ended, how much it did."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "id"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        _integration_fk("sync_runs"),
        Index(
            "ix_sync_runs_org_id_integration_id_started_at",
            "org_id",
            "integration_id",
            "started_at",
        ),
    )

    org_id: int = _org_id()
    id: int | None = _tenant_id()
    integration_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    stream: str | None = _str(64)
    started_at: dt.datetime | None = _ts(null=False, now=True)
    finished_at: dt.datetime | None = _ts()
    status: str = _str(16, null=False, default="running")
    records: int = _bigint(default=0)
    calls: int = _int(default=0)
    error: str | None = _text()


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


organizations = _table(Organization)
api_keys = _table(ApiKey)
oauth_states = _table(OAuthState)
webhook_events = _table(WebhookEventRow)
leases = _table(Lease)
integrations = _table(Integration)
credentials = _table(Credential)
ad_accounts = _table(AdAccount)
campaigns = _table(Campaign)
ad_groups = _table(AdGroup)
ads = _table(Ad)
creatives = _table(Creative)
daily_metrics = _table(DailyMetric)
leads = _table(Lead)
routes = _table(Route)
sync_state = _table(SyncState)
sync_runs = _table(SyncRun)

SYSTEM_TABLES: tuple[Table, ...] = (organizations, api_keys, oauth_states, webhook_events, leases)
TENANT_TABLES: tuple[Table, ...] = (
    integrations,
    credentials,
    ad_accounts,
    campaigns,
    ad_groups,
    ads,
    creatives,
    daily_metrics,
    leads,
    routes,
    sync_state,
    sync_runs,
)

# Natural keys (after org_id) that bulk upserts use, by table name.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "ad_accounts": ("platform", "external_id"),
    "campaigns": ("platform", "external_id"),
    "ad_groups": ("platform", "external_id"),
    "ads": ("platform", "external_id"),
    "creatives": ("platform", "external_id"),
    "daily_metrics": ("platform", "level", "entity_external_id", "date"),
    "leads": ("platform", "external_id"),
    "routes": ("platform", "kind", "external_id"),
    "sync_state": ("integration_id", "stream", "partition_key"),
}
