"""The `cmis` command line: a click group whose commands load lazily.

Every command follows one exit-code contract (:class:`cmis_core.errors.ExitCode`): a
:class:`~cmis_core.errors.CmisError` prints as one line (``error: ...``, then a ``hint:``
when there is one) and exits with its code; anything else is a bug: exit 70, with the
traceback only under ``--debug`` (or ``CMIS_DEBUG=1``).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from cmis_core.errors import CmisError, ExitCode

# name -> ("module:attribute", short help). A module is imported only when its command
# runs; the short help here is what `cmis --help` lists, so listing imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "accounts": (
        "cmis_core.cli.accounts:accounts",
        "Ad accounts found by sync, and whether sync reads them.",
    ),
    "apikeys": ("cmis_core.cli.apikeys:apikeys", "API keys."),
    "connect": (
        "cmis_core.cli.connect:connect",
        "Connect PLATFORM for an organisation (OAuth consent, or an existing token).",
    ),
    "db": ("cmis_core.cli.db:db", "The database schema."),
    "disconnect": (
        "cmis_core.cli.connect:disconnect",
        "Revoke PLATFORM's grant (where it can be) and delete its credentials.",
    ),
    "integrations": ("cmis_core.cli.integrations:integrations", "Connected platforms."),
    "keys": ("cmis_core.cli.keys:keys", "Encryption keys of the stored tokens."),
    "orgs": ("cmis_core.cli.orgs:orgs", "Organisations."),
    "plugins": ("cmis_core.cli.plugins:plugins", "Installed platform plugins."),
    "serve": (
        "cmis_core.cli.serve:serve",
        "Serve webhooks, OAuth callbacks and the org-scoped API.",
    ),
    "webhooks": ("cmis_core.cli.webhooks:webhooks", "The webhook inbox."),
    "leads": ("cmis_core.cli.leads:leads", "Leads."),
    "sync": (
        "cmis_core.cli.sync:sync",
        "Refresh tokens and sync ORG's integrations now, then exit.",
    ),
    "run": (
        "cmis_core.cli.run_due:run",
        "Do the work that is due (refreshes, syncs, inbox, purges), then exit.",
    ),
    "worker": (
        "cmis_core.cli.worker:worker",
        "Run a Celery worker for cmis's tasks (needs PostgreSQL and CMIS_CELERY_BROKER_URL).",
    ),
    "demo": (
        "cmis_core.cli.demo:demo",
        "Connect every installed platform to its sandbox, receive webhooks, sync, and show it.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name][0].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their short help, without importing the lazy ones."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="CMIS_DEBUG", help="Show tracebacks.")
@click.version_option(package_name="cmis-core", prog_name="cmis")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """cmis: connect ad platforms and keep their data in your own database."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    from cmis_core.logs import configure_logging

    configure_logging()
    if ctx.invoked_subcommand != "plugins":
        _warn_failed_plugins()


def _warn_failed_plugins() -> None:
    from cmis_core.factory import FAILED, get_registry

    for info in get_registry().plugins():
        if info.status == FAILED:
            click.echo(
                f"warning: plugin {info.name} ({info.distribution} {info.version}) "
                f"failed to load: {info.error}",
                err=True,
            )


def _register_plugin_commands() -> None:
    from cmis_core.factory import get_registry

    registry = get_registry()
    for impl in registry.pm.hook.cmis_register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # one broken plugin must not take the CLI down
            click.echo(
                f"warning: plugin {impl.plugin_name} failed to add commands: {exc}", err=True
            )


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("CMIS_DEBUG", "") in ("1", "true", "yes")


def report_error(exc: CmisError) -> None:
    """Print a CmisError as the CLI does: one line, then the hint (secrets masked)."""
    from cmis_core.redaction import neutralise, redact_text

    click.echo(f"error: {neutralise(redact_text(exc.message))}", err=True)
    if exc.hint:
        click.echo(f"hint: {neutralise(redact_text(exc.hint))}", err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises, except under --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    try:
        try:
            _register_plugin_commands()
        except CmisError:
            raise
        except Exception as exc:
            if debug:
                raise
            click.echo(f"warning: plugins could not be loaded: {exc}", err=True)
        result = cli.main(args=args, prog_name="cmis", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        return int(ExitCode.PARTIAL)
    except CmisError as exc:
        if debug:
            raise
        report_error(exc)
        return int(exc.exit_code)
    except Exception as exc:
        if debug:
            raise
        from cmis_core.redaction import neutralise, redact_text

        text = neutralise(redact_text(str(exc)))
        click.echo(f"error: unexpected {type(exc).__name__}: {text}", err=True)
        click.echo("hint: this is a bug; run again with --debug for the traceback", err=True)
        return int(ExitCode.SOFTWARE)
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
