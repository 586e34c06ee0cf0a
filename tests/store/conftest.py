# The database fixtures, imported by name: `pytest_plugins` is only allowed in a top-level
# conftest.py, and these tests must also run as part of `pytest tests`.
from cmis_core.testing.databases import (  # noqa: F401
    cmis_postgres_template,
    database,
    postgres_database,
    sqlite_database,
    store,
)
