"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 05:32:58.528252
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Self-contained on purpose: a migration must not change when the application code does.
TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

TENANT_TABLES = (
    "integrations",
    "credentials",
    "ad_accounts",
    "campaigns",
    "ad_groups",
    "ads",
    "creatives",
    "daily_metrics",
    "leads",
    "routes",
    "sync_state",
    "sync_runs",
)
# The SECURITY DEFINER functions run as the table owner, which FORCE ROW LEVEL SECURITY
# also confines; this read-only policy lets the owner (and so the functions) see these.
DEFINER_READS = ("integrations", "routes")
ORG_ID = "NULLIF(current_setting('cmis.org_id', true), '')::bigint"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def tenant_id() -> list[sa.Column[int]]:
    """The surrogate id of a tenant table: an identity on PostgreSQL, the rowid on SQLite."""
    if _sqlite():
        return [sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)]
    return [sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False)]


def tenant_key(table: str) -> list[sa.Constraint]:
    """Primary key (org_id, id) on PostgreSQL; on SQLite id is the key, (org_id, id) unique."""
    if _sqlite():
        return [sa.UniqueConstraint("org_id", "id", name=f"uq_{table}_org_id_id")]
    return [sa.PrimaryKeyConstraint("org_id", "id", name=f"pk_{table}")]


def isolate_tenant_tables() -> None:
    """Row-level security, enabled and forced, keyed on the transaction's cmis.org_id."""
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY cmis_org_isolation ON {table} "
            f"USING (org_id = {ORG_ID}) WITH CHECK (org_id = {ORG_ID})"
        )
    for table in DEFINER_READS:
        op.execute(
            f"CREATE POLICY cmis_definer_read ON {table} FOR SELECT TO CURRENT_USER USING (true)"
        )


def create_definer_functions() -> None:
    """The cross-organisation reads: due work and webhook routing, nothing else."""
    schema = op.get_bind().execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    path = f"SET search_path = pg_catalog, {schema}, pg_temp"
    op.execute(
        f"""
        CREATE FUNCTION cmis_due_integrations(p_now timestamptz, p_refresh_before timestamptz)
        RETURNS TABLE (
            org_id bigint, integration_id bigint, platform varchar,
            sync_due boolean, refresh_due boolean
        )
        LANGUAGE sql STABLE SECURITY DEFINER {path} AS $$
            SELECT d.org_id, d.id, d.platform, d.sync_due, d.refresh_due FROM (
                SELECT i.org_id, i.id, i.platform,
                       (i.queued_at IS NOT NULL OR i.next_sync_at IS NULL
                        OR i.next_sync_at <= p_now) AS sync_due,
                       COALESCE(i.access_expires_at <= p_refresh_before, false) AS refresh_due,
                       COALESCE(i.queued_at, i.next_sync_at) AS due_at
                FROM integrations i
                WHERE i.status = 'active'
            ) d
            WHERE d.sync_due OR d.refresh_due
            ORDER BY d.due_at NULLS FIRST, d.org_id, d.id
        $$
        """  # noqa: S608
    )
    op.execute(
        f"""
        CREATE FUNCTION cmis_route(p_platform varchar, p_kind varchar, p_external_id varchar)
        RETURNS TABLE (org_id bigint, integration_id bigint)
        LANGUAGE sql STABLE SECURITY DEFINER {path} AS $$
            SELECT r.org_id, r.integration_id
            FROM routes r
            JOIN integrations i ON i.org_id = r.org_id AND i.id = r.integration_id
            WHERE r.platform = p_platform AND r.kind = p_kind AND r.external_id = p_external_id
              AND i.status <> 'disconnected'
            ORDER BY r.updated_at DESC, r.org_id
            LIMIT 1
        $$
        """  # noqa: S608
    )
    for signature in (
        "cmis_due_integrations(timestamptz, timestamptz)",
        "cmis_route(varchar, varchar, varchar)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def upgrade() -> None:
    op.create_table(
        "ad_groups",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("account_external_id", sa.String(length=255), nullable=False),
        sa.Column("campaign_external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("platform_status", sa.String(length=64), nullable=True),
        sa.Column("daily_budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("lifetime_budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("created_time", TS, nullable=True),
        sa.Column("updated_time", TS, nullable=True),
        sa.Column("raw", JSON, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'archived', 'deleted')",
            name=op.f("ck_ad_groups_status"),
        ),
        sa.PrimaryKeyConstraint("org_id", "platform", "external_id", name=op.f("pk_ad_groups")),
    )
    op.create_table(
        "ads",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("account_external_id", sa.String(length=255), nullable=False),
        sa.Column("campaign_external_id", sa.String(length=255), nullable=True),
        sa.Column("ad_group_external_id", sa.String(length=255), nullable=True),
        sa.Column("creative_external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("platform_status", sa.String(length=64), nullable=True),
        sa.Column("created_time", TS, nullable=True),
        sa.Column("updated_time", TS, nullable=True),
        sa.Column("raw", JSON, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'archived', 'deleted')", name=op.f("ck_ads_status")
        ),
        sa.PrimaryKeyConstraint("org_id", "platform", "external_id", name=op.f("pk_ads")),
    )
    op.create_table(
        "campaigns",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("account_external_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("platform_status", sa.String(length=64), nullable=True),
        sa.Column("objective", sa.String(length=64), nullable=True),
        sa.Column("daily_budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("lifetime_budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("created_time", TS, nullable=True),
        sa.Column("updated_time", TS, nullable=True),
        sa.Column("raw", JSON, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'archived', 'deleted')",
            name=op.f("ck_campaigns_status"),
        ),
        sa.PrimaryKeyConstraint("org_id", "platform", "external_id", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "creatives",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("account_external_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("platform_status", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("link_url", sa.Text(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("video_external_id", sa.String(length=255), nullable=True),
        sa.Column("call_to_action", sa.String(length=64), nullable=True),
        sa.Column("created_time", TS, nullable=True),
        sa.Column("updated_time", TS, nullable=True),
        sa.Column("raw", JSON, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'archived', 'deleted')",
            name=op.f("ck_creatives_status"),
        ),
        sa.PrimaryKeyConstraint("org_id", "platform", "external_id", name=op.f("pk_creatives")),
    )
    op.create_table(
        "daily_metrics",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("entity_external_id", sa.String(length=255), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("account_external_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("impressions", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("clicks", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("conversions", sa.Numeric(20, 6), nullable=True),
        sa.Column("conversions_value_micros", sa.BigInteger(), nullable=True),
        sa.Column("attribution", sa.String(length=64), nullable=True),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "level IN ('account', 'campaign', 'ad_group', 'ad')",
            name=op.f("ck_daily_metrics_level"),
        ),
        sa.PrimaryKeyConstraint(
            "org_id",
            "platform",
            "level",
            "entity_external_id",
            "date",
            name=op.f("pk_daily_metrics"),
        ),
    )
    op.create_table(
        "leads",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("form_id", sa.String(length=255), nullable=True),
        sa.Column("ad_id", sa.String(length=255), nullable=True),
        sa.Column("ad_group_id", sa.String(length=255), nullable=True),
        sa.Column("campaign_id", sa.String(length=255), nullable=True),
        sa.Column("page_id", sa.String(length=255), nullable=True),
        sa.Column("created_time", TS, nullable=True),
        sa.Column("fields", JSON, nullable=True),
        sa.Column("is_test", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("raw", JSON, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "platform", "external_id", name=op.f("pk_leads")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("until", TS, nullable=True),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "organizations",
        sa.Column("id", ID, sa.Identity(always=True), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", ID, sa.Identity(always=True), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_api_keys_org_id"), "api_keys", ["org_id"], unique=False)
    op.create_table(
        "integrations",
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        *tenant_id(),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("external_user_id", sa.String(length=255), nullable=True),
        sa.Column("external_user_name", sa.String(length=255), nullable=True),
        sa.Column("scopes", JSON, nullable=True),
        sa.Column("access_expires_at", TS, nullable=True),
        sa.Column("refresh_expires_at", TS, nullable=True),
        sa.Column("sync_interval_seconds", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("next_sync_at", TS, nullable=True),
        sa.Column("queued_at", TS, nullable=True),
        sa.Column("last_sync_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'needs_reauth', 'disconnected')",
            name=op.f("ck_integrations_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_integrations_org", ondelete="CASCADE"
        ),
        *tenant_key("integrations"),
        sa.UniqueConstraint("org_id", "platform", name=op.f("uq_integrations_org_id_platform")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_integrations_next_sync_at", "integrations", ["next_sync_at"], unique=False)
    op.create_table(
        "oauth_states",
        sa.Column("id", ID, sa.Identity(always=True), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("verifier_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_oauth_states_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_oauth_states_expires_at", "oauth_states", ["expires_at"], unique=False)
    op.create_table(
        "webhook_events",
        sa.Column("id", ID, sa.Identity(always=True), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("received_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="received", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("integration_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'unroutable', 'failed')",
            name=op.f("ck_webhook_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_events_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "platform", "dedupe_key", name=op.f("uq_webhook_events_platform_dedupe_key")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_webhook_events_status_next_attempt_at",
        "webhook_events",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "ad_accounts",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("integration_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("platform_status", sa.String(length=64), nullable=True),
        sa.Column("sync_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("raw", JSON, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'archived', 'deleted')",
            name=op.f("ck_ad_accounts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "integration_id"],
            ["integrations.org_id", "integrations.id"],
            name="fk_ad_accounts_integration",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "platform", "external_id", name=op.f("pk_ad_accounts")),
    )
    op.create_table(
        "credentials",
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        *tenant_id(),
        sa.Column("integration_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "integration_id"],
            ["integrations.org_id", "integrations.id"],
            name="fk_credentials_integration",
            ondelete="CASCADE",
        ),
        *tenant_key("credentials"),
        sa.UniqueConstraint(
            "org_id", "integration_id", name=op.f("uq_credentials_org_id_integration_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "routes",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("integration_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('page', 'ad_account', 'form', 'customer')", name=op.f("ck_routes_kind")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "integration_id"],
            ["integrations.org_id", "integrations.id"],
            name="fk_routes_integration",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "platform", "kind", "external_id", name=op.f("pk_routes")
        ),
    )
    op.create_index(
        "ix_routes_platform_kind_external_id",
        "routes",
        ["platform", "kind", "external_id"],
        unique=False,
    )
    op.create_table(
        "sync_runs",
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        *tenant_id(),
        sa.Column("integration_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=True),
        sa.Column("started_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("records", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed')",
            name=op.f("ck_sync_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "integration_id"],
            ["integrations.org_id", "integrations.id"],
            name="fk_sync_runs_integration",
            ondelete="CASCADE",
        ),
        *tenant_key("sync_runs"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_sync_runs_org_id_integration_id_started_at",
        "sync_runs",
        ["org_id", "integration_id", "started_at"],
        unique=False,
    )
    op.create_table(
        "sync_state",
        sa.Column("org_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("integration_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("partition_key", sa.String(length=255), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "integration_id"],
            ["integrations.org_id", "integrations.id"],
            name="fk_sync_state_integration",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "integration_id", "stream", "partition_key", name=op.f("pk_sync_state")
        ),
    )
    if not _sqlite():
        isolate_tenant_tables()
        create_definer_functions()


def downgrade() -> None:
    if not _sqlite():
        op.execute("DROP FUNCTION cmis_route(varchar, varchar, varchar)")
        op.execute("DROP FUNCTION cmis_due_integrations(timestamptz, timestamptz)")
    op.drop_table("sync_state")
    op.drop_index("ix_sync_runs_org_id_integration_id_started_at", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_index("ix_routes_platform_kind_external_id", table_name="routes")
    op.drop_table("routes")
    op.drop_table("credentials")
    op.drop_table("ad_accounts")
    op.drop_index("ix_webhook_events_status_next_attempt_at", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_oauth_states_expires_at", table_name="oauth_states")
    op.drop_table("oauth_states")
    op.drop_index("ix_integrations_next_sync_at", table_name="integrations")
    op.drop_table("integrations")
    op.drop_index(op.f("ix_api_keys_org_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("organizations")
    op.drop_table("leases")
    op.drop_table("leads")
    op.drop_table("daily_metrics")
    op.drop_table("creatives")
    op.drop_table("campaigns")
    op.drop_table("ads")
    op.drop_table("ad_groups")
