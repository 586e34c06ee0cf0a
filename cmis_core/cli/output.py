"""How commands print listings: a table on a terminal, JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)


def emit(rows: Iterable[Mapping[str, Any]], *, as_json: bool, columns: Sequence[str]) -> None:
    """Print ``rows`` as a JSON array (every field) or as a table of ``columns``."""
    rows = list(rows)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str, sort_keys=False))
        return
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
