"""Alembic environment of cmis. Run migrations with `cmis db upgrade`, not `alembic`.

The caller hands over an open connection (``config.attributes["connection"]``), already
inside the transaction the whole upgrade runs in.
"""

from __future__ import annotations

from alembic import context

from cmis_core.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - a guard for people running `alembic` by hand
    raise RuntimeError("run the cmis migrations with `cmis db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
