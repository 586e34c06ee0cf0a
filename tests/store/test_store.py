"""The store API on both backends: organisations, API keys, cross-org reads, opening."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from sqlalchemy import select, text, update

from cmis_core.errors import UnknownOrganization, UsageError
from cmis_core.store import Store, open_store, scoped, tables
from cmis_core.store.schema import head_revision
from cmis_core.testing.databases import TestDatabase
from tests.store.samples import add_integration, seed


def test_organisations_are_created_listed_and_found_by_slug(store: Store):
    acme = store.create_org("acme", "Acme Inc")
    beta = store.create_org("beta-2")
    assert store.get_org("acme") == acme
    assert [o.slug for o in store.list_orgs()] == ["acme", "beta-2"]
    assert beta.name == "beta-2"
    assert acme.id != beta.id
    with pytest.raises(UsageError, match="already exists"):
        store.create_org("acme")
    with pytest.raises(UnknownOrganization):
        store.get_org("nobody")


@pytest.mark.parametrize("slug", ["A", "a", "1abc", "ab_c", "abc-", "a--b", "x" * 64, "ab c"])
def test_bad_slugs_are_refused(sqlite_database: TestDatabase, slug: str):
    with open_store(sqlite_database.settings()) as store:
        with pytest.raises(UsageError, match="invalid organisation slug"):
            store.create_org(slug)
        assert store.list_orgs() == []


def test_api_keys_verify_only_while_unrevoked_and_are_stored_hashed(store: Store):
    org = store.create_org("acme")
    key_id, key = store.create_api_key(org.id, "ci")
    other_id, other = store.create_api_key(org.id)
    assert key.startswith("cmis_")
    assert key != other
    assert store.verify_api_key(key) == org.id
    assert store.verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.verify_api_key("not a key") is None
    with store.system(write=False) as conn:
        stored = conn.execute(select(tables.api_keys)).all()
    assert all(key not in repr(row) and key.split("_", 2)[2] not in repr(row) for row in stored)
    infos = store.list_api_keys(org.id)
    assert [i.id for i in infos] == [key_id, other_id]
    assert infos[0].last_used_at is not None
    assert infos[1].last_used_at is None
    store.revoke_api_key(key_id)
    revoked_at = store.list_api_keys(org.id)[0].revoked_at
    store.revoke_api_key(key_id)  # idempotent: the first revocation time stays
    assert store.list_api_keys(org.id)[0].revoked_at == revoked_at is not None
    assert store.verify_api_key(key) is None
    assert store.verify_api_key(other) == org.id
    with pytest.raises(UsageError, match="no API key"):
        store.revoke_api_key(999)
    with pytest.raises(UsageError, match="no organisation"):
        store.create_api_key(999)


def test_due_integrations_and_routes_across_orgs(store: Store):
    now = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    a, b, c = (store.create_org(s) for s in ("org-a", "org-b", "org-c"))
    with store.org(a.id) as conn:
        ia = add_integration(conn, a.id, next_sync_at=now - dt.timedelta(minutes=5))
        seed_route = {
            "org_id": a.id,
            "platform": "meta",
            "kind": "page",
            "external_id": "p1",
            "integration_id": ia,
        }
        conn.execute(tables.routes.insert().values(**seed_route))
    with store.org(b.id) as conn:
        ib = add_integration(
            conn,
            b.id,
            next_sync_at=now + dt.timedelta(hours=1),
            access_expires_at=now + dt.timedelta(minutes=3),
        )
        add_integration(conn, b.id, platform="google", next_sync_at=now + dt.timedelta(hours=1))
    with store.org(c.id) as conn:
        add_integration(conn, c.id, status="needs_reauth", next_sync_at=now - dt.timedelta(hours=1))
    due = store.due_integrations(now)
    assert [(d.org_id, d.integration_id, d.sync_due, d.refresh_due) for d in due] == [
        (a.id, ia, True, False),
        (b.id, ib, False, True),
    ]
    assert store.due_integrations(now, refresh_ahead=dt.timedelta(minutes=1))[1:] == []
    target = store.route("meta", "page", "p1")
    assert target is not None
    assert (target.org_id, target.integration_id) == (a.id, ia)
    assert store.route("meta", "form", "p1") is None
    with pytest.raises(ValueError, match="timezone-aware"):
        store.due_integrations(dt.datetime(2025, 1, 1))


def test_scoped_select_is_the_store_layer_filter(store: Store):
    a, b = store.create_org("org-a"), store.create_org("org-b")
    for org in (a, b):
        with store.org(org.id) as conn:
            seed(conn, org.id)
    with store.org(b.id, write=False) as conn:
        rows = conn.execute(scoped(conn, tables.campaigns)).all()
    assert [r.org_id for r in rows] == [b.id]
    with pytest.raises(UsageError, match="org transaction"), store.system() as conn:
        scoped(conn, tables.campaigns)


def test_org_transactions_roll_back_on_error(store: Store):
    org = store.create_org("acme")

    def fail_midway() -> None:
        with store.org(org.id) as conn:
            add_integration(conn, org.id)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    with store.org(org.id, write=False) as conn:
        assert conn.execute(scoped(conn, tables.integrations)).all() == []
    with pytest.raises(UsageError, match="positive integer"), store.org(0):
        pass


def test_sqlite_migrates_on_first_use_in_wal_mode(sqlite_database: TestDatabase):
    path = sqlite_database.home / "cmis.db"
    assert not path.exists()
    with open_store(sqlite_database.settings()) as store:
        store.create_org("acme")
        with store.system(write=False) as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                == head_revision()
            )
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with open_store(sqlite_database.settings()) as store:  # opening again keeps the data
        assert [o.slug for o in store.list_orgs()] == ["acme"]


def test_sqlite_writers_take_the_write_lock_at_begin(sqlite_database: TestDatabase):
    with open_store(sqlite_database.settings()) as store:
        org = store.create_org("acme")
        other = sqlite3.connect(sqlite_database.home / "cmis.db", timeout=0)
        try:
            # BEGIN IMMEDIATE already holds the RESERVED lock, before any statement
            with store.org(org.id), pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            with store.org(org.id, write=False):
                other.execute("BEGIN IMMEDIATE")  # a reader does not block a writer
                other.rollback()
        finally:
            other.close()


def test_integration_status_is_checked_by_the_database(store: Store):
    from sqlalchemy.exc import IntegrityError

    org = store.create_org("acme")
    with store.org(org.id) as conn:
        integration = add_integration(conn, org.id)
    with pytest.raises(IntegrityError), store.org(org.id) as conn:
        conn.execute(
            update(tables.integrations)
            .where(tables.integrations.c.id == integration)
            .values(status="sleeping")
        )
