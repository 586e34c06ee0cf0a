"""docs/schema.md is public API: every table and column is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from cmis_core.store import SYSTEM_TABLES, TENANT_TABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def test_every_column_is_documented_with_a_meaning():
    text = DOC.read_text()
    sections = dict(re.findall(r"^### (\w+)\n(.*?)(?=^##|\Z)", text, flags=re.M | re.S))
    for table in (*SYSTEM_TABLES, *TENANT_TABLES):
        assert table.name in sections, table.name
        documented = dict(
            re.findall(r"^\| (\w+) \|[^|]*\|[^|]*\| (.*) \|$", sections[table.name], flags=re.M)
        )
        documented.pop("column", None)  # the header row
        for column in table.c:
            assert documented.get(column.name, "").strip(), f"{table.name}.{column.name}"
        assert set(documented) == {c.name for c in table.c}, table.name
