"""The exit-code contract every command follows, and what `cmis --help` imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmis_core.errors import ExitCode
from tests.core.fake_dists import make_dist

RAISER = '''
import click
from cmis_core import hookimpl


@hookimpl
def cmis_register_commands(cli):
    @cli.command("raise")
    @click.argument("kind")
    def raise_(kind):
        """Raise the error named KIND."""
        from cmis_core import errors

        if kind == "ok":
            return 0
        if kind == "bug":
            raise KeyError("not a CmisError")
        if kind == "secret":
            raise errors.Transient("upstream said no")
        cls = getattr(errors, kind)
        if kind == "PluginConflict":
            raise cls("alpha", ("cmis-alpha", "acme-alpha"))
        if kind == "MissingSetting":
            raise cls("CMIS_ALPHA_CLIENT_ID", "needed to connect")
        raise cls(f"{kind} happened", hint="try the other thing")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    make_dist(root, "cmis-raiser", "1.0", "raiser", "raiser_plugin", RAISER)
    return root


def cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "CMIS_LOG_FORMAT": "json"}
    env.pop("CMIS_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "cmis_core", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("ok", ExitCode.OK),
        ("ConfigurationError", ExitCode.USAGE),
        ("MissingSetting", ExitCode.USAGE),
        ("UsageError", ExitCode.USAGE),
        ("PluginConflict", ExitCode.USAGE),
        ("Transient", ExitCode.PARTIAL),
        ("AccountFailed", ExitCode.PARTIAL),
        ("ReauthRequired", ExitCode.NOPERM),
        ("TokenRejected", ExitCode.NOPERM),
        ("LockHeld", ExitCode.TEMPFAIL),
        ("bug", ExitCode.SOFTWARE),
    ],
)
def test_exit_code_contract(site: Path, kind: str, code: ExitCode) -> None:
    result = cli(site, "raise", kind)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code not in (ExitCode.OK, ExitCode.SOFTWARE):
        first = result.stderr.strip().splitlines()[0]
        assert first.startswith("error: ")


def test_error_prints_one_line_and_hint(site: Path) -> None:
    result = cli(site, "raise", "ConfigurationError")
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: ConfigurationError happened", "hint: try the other thing"]


def test_unexpected_error_is_70_with_traceback_only_under_debug(site: Path) -> None:
    plain = cli(site, "raise", "bug")
    assert plain.returncode == 70
    assert "--debug" in plain.stderr and "Traceback" not in plain.stderr
    debug = cli(site, "--debug", "raise", "bug")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "KeyError" in debug.stderr


def test_usage_error_is_2(site: Path) -> None:
    assert cli(site, "no-such-command").returncode == 2
    assert cli(site, "plugins", "list", "--bogus").returncode == 2


def test_precedence_of_combined_codes() -> None:
    combine = ExitCode.combine
    assert combine(ExitCode.OK, ExitCode.TEMPFAIL) == ExitCode.TEMPFAIL
    assert combine(ExitCode.TEMPFAIL, ExitCode.NOPERM) == ExitCode.NOPERM
    assert combine(ExitCode.NOPERM, ExitCode.PARTIAL) == ExitCode.PARTIAL
    assert combine(ExitCode.PARTIAL, ExitCode.USAGE, ExitCode.NOPERM) == ExitCode.USAGE
    assert combine() == ExitCode.OK


HEAVY = [
    "sqlalchemy",
    "pydantic",
    "httpx2",
    "authlib",
    "rich",
    "starlette",
    "celery",
    "sqlmodel",
    "asyncio",
    "structlog",
]


def test_help_imports_little() -> None:
    probe = (
        "import sys\n"
        "from cmis_core.cli import run\n"
        "code = run(['--help'])\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "import json; print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, result.stderr


def test_lazy_command_help_matches_each_command() -> None:
    import importlib

    from cmis_core.cli import COMMANDS

    for name, (path, short) in COMMANDS.items():
        module, _, attr = path.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert command.get_short_help_str(200) == short, name


def test_no_cli_module_shadows_a_name_of_the_cli_package() -> None:
    # importing cmis_core.cli.<x> sets the package attribute <x>: a module named like a
    # function of the package (run, main) would replace that function once imported.
    import ast
    import pkgutil
    from pathlib import Path

    import cmis_core.cli as package

    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    tree = ast.parse(Path(package.__file__).read_text())
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
    }
    assert "run" in defined
    assert modules & defined == set()
