"""`cmis demo`: every installed platform against its sandbox, offline, end to end."""

from __future__ import annotations

from typing import Any

import click


def _echo(text: str = "") -> None:
    click.echo(text)


@click.command()
@click.option(
    "--webhooks",
    "webhook_count",
    default=3,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Signed webhooks each sandbox delivers to cmis serve.",
)
def demo(webhook_count: int) -> int:
    """Connect every installed platform to its sandbox, receive webhooks, sync, and show it.

    Uses a fresh SQLite database under a temporary CMIS_HOME unless CMIS_HOME is set
    (then it reuses the organisation `demo` and its integrations). Nothing leaves this
    machine: sandboxes and the service listen on 127.0.0.1 only.
    """
    import asyncio
    import contextlib
    import os
    import time

    from cmis_core import demo as d
    from cmis_core.contract import SandboxOptions
    from cmis_core.errors import ConfigurationError, ExitCode, UnknownOrganization
    from cmis_core.factory import get_registry
    from cmis_core.logs import configure_logging
    from cmis_core.runner.console import progress_display
    from cmis_core.runner.local import run_due
    from cmis_core.runner.work import Runtime
    from cmis_core.settings import Settings

    try:
        from cmis_core.service.app import create_app
        from cmis_core.testing.serve import serve_sandbox
    except ImportError:
        raise ConfigurationError(
            "the demo needs the server extra", hint="pip install 'cmis-core[server]'"
        ) from None
    if not os.environ.get("CMIS_LOG_LEVEL"):
        configure_logging(force=True, level="error")
    began = time.monotonic()
    plan = d.DemoPlan.from_environ(os.environ)
    registry = get_registry()
    platforms = sorted(p for p in registry.sandboxes if p in registry.platforms)
    if not platforms:
        raise ConfigurationError(
            "no installed platform has a sandbox",
            hint="install a platform plugin, e.g. pip install -e ./plugins/cmis_example",
        )
    fresh = "a new" if plan.temporary else "the"
    _echo(f"cmis demo: {fresh} SQLite database in {plan.home} (CMIS_HOME)")
    options = SandboxOptions(seed=1, size="small", rate_limit=False)
    sock, service_url = d.loopback_socket()
    with contextlib.ExitStack() as stack:
        running = [
            stack.enter_context(serve_sandbox(registry.sandbox(p), options)) for p in platforms
        ]
        for sandbox in running:
            _echo(f"  {sandbox.platform} sandbox on {sandbox.base_url}")
        env = plan.environ(os.environ)
        env.update(d.env_of_sandboxes(running))
        env["CMIS_PUBLIC_URL"] = service_url
        settings = Settings.from_env(env)
        rt = stack.enter_context(Runtime.open(settings, registry=registry))
        stack.enter_context(
            d.serve_on(sock, create_app(settings, store=rt.store, registry=registry))
        )
        _echo(f"  cmis serve on {service_url}")
        try:
            org = rt.store.get_org(d.ORG)
            _echo(f"organisation {org.slug}: reused")
        except UnknownOrganization:
            org = rt.store.create_org(d.ORG, "Demo organisation")
            _echo(f"organisation {org.slug}: created")

        async def connect_and_deliver() -> list[str]:
            lines = []
            for sandbox in running:
                done = await d.connect_platform(rt, org.id, sandbox.platform)
                verb = "reconnected" if done.get("replaced") else "connected"
                who = done.get("account") or "an account"
                lines.append(f"{verb} {sandbox.platform} as {who} through its OAuth flow")
            for sandbox in running:
                statuses = await d.deliver_webhooks(sandbox.base_url, service_url, webhook_count)
                if statuses:
                    ok = sum(1 for s in statuses if s == 200)
                    lines.append(
                        f"{sandbox.platform}: {len(statuses)} signed webhooks delivered "
                        f"to cmis serve, {ok} accepted"
                    )
            return lines

        for line in asyncio.run(connect_and_deliver()):
            _echo(line)
        d.queue_syncs(rt.store, org.id)
        _echo("running the runner (cmis run): refresh, sync, inbox ...")
        with progress_display(enabled=True) as progress_for:
            report = asyncio.run(run_due(rt, progress_for=progress_for))
        _echo()
        for platform in platforms:
            _table(
                registry.platform(platform).display_name,
                platform,
                d.counts(rt.store, org.id, platform),
            )
        for item in report.integrations:
            if item.status != "succeeded":
                _echo(f"{item.org}/{item.platform}: {item.status} {item.error or ''}".rstrip())
        inbox = report.inbox or {}
        _echo(
            f"webhook inbox: {inbox.get('processed', 0)} processed, "
            f"{inbox.get('unroutable', 0)} waiting for a route, {inbox.get('failed', 0)} failed"
        )
    elapsed = time.monotonic() - began
    _echo(f"done in {elapsed:.1f}s; the data is in {plan.home / 'cmis.db'}")
    _echo(f"again, reusing it: CMIS_HOME={plan.home} cmis demo")
    code: ExitCode = report.exit_code
    return int(code)


def _table(title: str, platform: str, counts: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} ({platform})", title_justify="left")
    for label in counts:
        table.add_column(label, justify="right")
    table.add_row(*(f"{n:,}" for n in counts.values()))
    Console(soft_wrap=False).print(table)
