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


@plugins.command("show")
@click.argument("platform")
@json_option
def show_platform(platform: str, as_json: bool) -> int:
    """What the plugin for PLATFORM provides: API version, scopes, streams, sandbox."""
    import json

    from cmis_core.factory import get_registry

    registry = get_registry()
    record = registry.platform(platform)
    owner = registry.owner[platform]
    info = {
        "platform": record.name,
        "display_name": record.display_name,
        "distribution": owner.distribution,
        "version": owner.version,
        "api_version": record.api_version,
        "api_version_sunset": record.api_version_sunset.isoformat()
        if record.api_version_sunset
        else None,
        "base_url": record.base_url,
        "scopes": list(record.scopes),
        "capabilities": sorted(str(c) for c in record.capabilities),
        "auth": platform in registry.auth_providers,
        "webhooks": platform in registry.webhook_verifiers,
        "streams": sorted(registry.streams.get(platform, {})),
        "sandbox": platform in registry.sandboxes,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            click.echo(f"{key.ljust(width)}  {shown}")
    return int(ExitCode.OK)
