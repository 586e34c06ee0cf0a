"""Organisations (a system table): create, get by slug, list."""

from __future__ import annotations

import re

from sqlalchemy import Connection, insert, select

from cmis_core.errors import UnknownOrganization, UsageError
from cmis_core.store.records import Org
from cmis_core.store.tables import organizations

_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def check_slug(slug: str) -> str:
    """``slug`` if it is 2-63 lower-case letters, digits and inner hyphens, from a letter."""
    if not isinstance(slug, str) or not _SLUG.match(slug) or "--" in slug:
        raise UsageError(
            f"invalid organisation slug {slug!r}: use 2-63 lower-case letters, digits and "
            "hyphens, starting with a letter (e.g. acme-eu)"
        )
    return slug


def create_org(conn: Connection, slug: str, name: str | None = None) -> Org:
    """Insert a new organisation; :class:`UsageError` when the slug is taken."""
    check_slug(slug)
    name = slug if name is None else name.strip()
    if not name or len(name) > 200:
        raise UsageError("an organisation's display name has 1 to 200 characters")
    if conn.execute(select(organizations.c.id).where(organizations.c.slug == slug)).first():
        raise UsageError(f"organisation {slug!r} already exists")
    row = conn.execute(
        insert(organizations).values(slug=slug, name=name).returning(*organizations.c)
    ).one()
    return Org.from_row(row._mapping)


def get_org(conn: Connection, slug: str) -> Org:
    """The organisation ``slug``; :class:`UnknownOrganization` when there is none."""
    row = conn.execute(select(organizations).where(organizations.c.slug == slug)).first()
    if row is None:
        raise UnknownOrganization(f"no organisation {slug!r}", hint="see `cmis orgs list`")
    return Org.from_row(row._mapping)


def list_orgs(conn: Connection) -> list[Org]:
    """Every organisation, by slug."""
    rows = conn.execute(select(organizations).order_by(organizations.c.slug))
    return [Org.from_row(row._mapping) for row in rows]
