"""`cmis plugins`: what is installed and whether it loaded."""

from __future__ import annotations

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode


@click.group()
def plugins() -> None:
    """Installed platform plugins."""


@plugins.command("list")
@json_option
def list_plugins(as_json: bool) -> int:
    """Distribution, version, platforms, capabilities and status of each plugin."""
    from cmis_core.factory import get_registry

    rows = [info.to_json() for info in get_registry().plugins()]
    emit(
        rows,
        as_json=as_json,
        columns=("name", "distribution", "version", "status", "platforms", "capabilities", "error"),
    )
    return int(ExitCode.OK)
