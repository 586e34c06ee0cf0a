"""Organisations kept apart by PostgreSQL itself, checked as the application role."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import DBAPIError

from cmis_core.errors import ConfigurationError, SchemaOutOfDate
from cmis_core.store import TENANT_TABLES, Store, open_store
from cmis_core.store.schema import upgrade
from cmis_core.testing.databases import TestDatabase
from tests.store.samples import seed, tenant_rows

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_orgs(postgres_database: TestDatabase):
    store = open_store(postgres_database.settings())
    a, b = store.create_org("org-a"), store.create_org("org-b")
    with store.org(a.id) as conn:
        ia = seed(conn, a.id)
    with store.org(b.id) as conn:
        ib = seed(conn, b.id)
    yield store, a.id, b.id, ia, ib
    store.close()


def test_every_tenant_table_is_covered_by_the_samples():
    names = {table.name for table in TENANT_TABLES}
    assert names == {"integrations", *tenant_rows(1, 1)}


def test_bare_select_in_org_b_shows_none_of_org_a(two_orgs):
    store, a, b, _, _ = two_orgs
    with store.org(b, write=False) as conn:
        for table in TENANT_TABLES:
            orgs = [row.org_id for row in conn.execute(text(f"SELECT * FROM {table.name}"))]
            assert orgs == [b], table.name
    with store.org(a, write=False) as conn:
        for table in TENANT_TABLES:
            orgs = [row.org_id for row in conn.execute(text(f"SELECT * FROM {table.name}"))]
            assert orgs == [a], table.name


def test_no_context_sees_zero_rows(two_orgs):
    store = two_orgs[0]
    with store.system(write=False) as conn:
        for table in TENANT_TABLES:
            count = conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one()
            assert count == 0, table.name


def test_insert_naming_org_a_is_refused_in_org_b(two_orgs):
    store, a, b, ia, _ = two_orgs
    samples = tenant_rows(a, ia)
    for table in TENANT_TABLES:
        if table.name == "integrations":
            row = {"org_id": a, "platform": "google"}
        elif "external_id" in table.c:
            row = {**samples[table.name], "external_id": "new"}
        elif table.name == "daily_metrics":
            row = {**samples[table.name], "date": "2024-06-01"}
        else:
            row = (
                {**samples[table.name], "stream": "other"}
                if "stream" in table.c
                else samples[table.name]
            )
        with pytest.raises(DBAPIError, match="row-level security"), store.org(b) as conn:
            conn.execute(insert(table).values(**row))


def test_update_cannot_reach_or_move_to_org_a(two_orgs):
    store, a, b, _, _ = two_orgs
    for table in (t.name for t in TENANT_TABLES):
        with store.org(b) as conn:
            touched = conn.execute(
                text(f"UPDATE {table} SET org_id = org_id WHERE org_id = :a"), {"a": a}
            )
            assert touched.rowcount == 0, table
            deleted = conn.execute(text(f"DELETE FROM {table} WHERE org_id = :a"), {"a": a})
            assert deleted.rowcount == 0, table
        with pytest.raises(DBAPIError, match="row-level security"), store.org(b) as conn:
            conn.execute(text(f"UPDATE {table} SET org_id = :a"), {"a": a})
    with store.org(a, write=False) as conn:  # org A's rows are all still there
        for table in TENANT_TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one() == 1


def test_application_role_is_unprivileged_and_every_tenant_table_forces_rls(two_orgs):
    store = two_orgs[0]
    with store.system(write=False) as conn:
        role = conn.execute(
            text(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
        assert not role.rolsuper
        assert not role.rolbypassrls
        owned = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
                "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'"
            )
        ).scalar_one()
        assert owned == 0
        tables = {
            r.relname: r
            for r in conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                    " pg_has_role(current_user, c.relowner, 'MEMBER') AS owner"
                    " FROM pg_class c WHERE c.relkind = 'r'"
                    " AND c.relnamespace = current_schema()::regnamespace"
                )
            )
        }
        for table in TENANT_TABLES:
            info = tables[table.name]
            assert info.relrowsecurity, table.name
            assert info.relforcerowsecurity, table.name
            assert not info.owner, table.name
        unique_first = conn.execute(
            text(
                "SELECT t.relname, a.attname FROM pg_index i"
                " JOIN pg_class t ON t.oid = i.indrelid"
                " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]"
                " WHERE i.indisunique AND t.relnamespace = current_schema()::regnamespace"
            )
        ).all()
        tenant = {table.name for table in TENANT_TABLES}
        checked = [(r.relname, r.attname) for r in unique_first if r.relname in tenant]
        assert len(checked) >= len(tenant)
        assert all(column == "org_id" for _, column in checked), checked


def test_one_pooled_connection_never_carries_a_context_across(postgres_database: TestDatabase):
    engine = create_engine(postgres_database.url, pool_size=1, max_overflow=0)
    store = Store(engine)
    a, b = store.create_org("pool-a"), store.create_org("pool-b")
    for org in (a, b):
        with store.org(org.id) as conn:
            seed(conn, org.id)
    pids = set()
    for _ in range(3):
        for org, other in ((a, b), (b, a)):
            with store.org(org.id, write=False) as conn:
                pids.add(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                assert conn.execute(
                    text("SELECT current_setting('cmis.org_id')")
                ).scalar_one() == str(org.id)
                assert {r.org_id for r in conn.execute(text("SELECT org_id FROM campaigns"))} == {
                    org.id
                }
            with pytest.raises(RuntimeError), store.org(other.id) as conn:
                raise RuntimeError("rolled back mid-transaction")
            with store.system(write=False) as conn:
                pids.add(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                assert conn.execute(
                    text("SELECT current_setting('cmis.org_id', true)")
                ).scalar() in (None, "")
                assert conn.execute(text("SELECT count(*) FROM campaigns")).scalar_one() == 0
    assert len(pids) == 1
    store.close()


def test_definer_functions_route_and_find_due_work_across_orgs(two_orgs):
    import datetime as dt

    store, a, b, ia, ib = two_orgs
    now = dt.datetime.now(dt.UTC)
    with store.org(a) as conn:
        conn.execute(
            text("UPDATE integrations SET next_sync_at = :t"), {"t": now + dt.timedelta(hours=1)}
        )
    due = store.due_integrations(now)
    assert [(d.org_id, d.integration_id, d.sync_due) for d in due] == [(b, ib, True)]
    target = store.route("meta", "page", "p1")  # both orgs route p1: the newest route wins
    assert target is not None
    assert (target.org_id, target.integration_id) == (b, ib)
    with store.org(b) as conn:
        conn.execute(text("UPDATE integrations SET status = 'disconnected'"))
    target = store.route("meta", "page", "p1")
    assert target is not None
    assert (target.org_id, target.integration_id) == (a, ia)
    assert store.route("meta", "page", "unknown") is None


def test_application_role_cannot_call_owner_paths(two_orgs):
    store = two_orgs[0]
    with (
        pytest.raises(DBAPIError, match=r"must be owner|permission denied"),
        store.system() as conn,
    ):
        conn.execute(text("ALTER TABLE campaigns NO FORCE ROW LEVEL SECURITY"))


def test_open_refuses_the_owner_connection(postgres_database: TestDatabase):
    settings = postgres_database.settings(CMIS_DATABASE_URL=postgres_database.migration_url)
    with pytest.raises(ConfigurationError, match="owns the tables"):
        open_store(settings)


def test_open_refuses_a_database_without_the_schema(postgres_database: TestDatabase):
    owner = create_engine(postgres_database.migration_url)
    with owner.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaOutOfDate, match="newer than this cmis"):
        open_store(postgres_database.settings())
    with owner.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    owner.dispose()
    with pytest.raises(SchemaOutOfDate) as caught:
        open_store(postgres_database.settings())
    assert caught.value.hint == "run `cmis db upgrade`"


def test_unreachable_database_is_a_configuration_error(postgres_database: TestDatabase):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with pytest.raises(ConfigurationError, match="cannot connect to the database"):
        open_store(postgres_database.settings(CMIS_DATABASE_URL=url))


def test_upgrade_twice_is_a_no_op_and_keeps_grants(postgres_database: TestDatabase):
    result = upgrade(postgres_database.settings())
    assert result.before == result.after
    store = open_store(postgres_database.settings())
    assert store.create_org("after-upgrade").slug == "after-upgrade"
    store.close()


def test_upgrade_refuses_to_migrate_as_the_application_role(postgres_database: TestDatabase):
    settings = postgres_database.settings(CMIS_DATABASE_MIGRATION_URL=postgres_database.url)
    with pytest.raises(ConfigurationError, match="application role"):
        upgrade(settings)
