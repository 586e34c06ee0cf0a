"""Sessions: tests (core and every plugin, SQLite and PostgreSQL), lint, typecheck, demo, bench.

`python3 -m nox -s tests` is the README's test command and what CI runs.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PLUGINS = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "plugins").glob("cmis_*")
    if (p / "pyproject.toml").exists()
)
PYTHON = "3.11"


def install_all(session: nox.Session) -> None:
    """cmis-core with every extra and every plugin in the repo, editable."""
    session.install("-e", ".[dev]", *[arg for p in PLUGINS for arg in ("-e", p)])


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Core and plugin tests, each database test on SQLite and on PostgreSQL."""
    install_all(session)
    paths = ["tests", *[f"{p}/tests" for p in PLUGINS if (ROOT / p / "tests").exists()]]
    session.run(
        "pytest",
        *(session.posargs or paths),
        env={"CMIS_TEST_BACKENDS": session.env.get("CMIS_TEST_BACKENDS", "sqlite,postgres")},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over everything."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on cmis_core."""
    install_all(session)
    session.run("mypy")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """`cmis demo`: every installed platform against its sandbox, on SQLite."""
    install_all(session)
    session.run("cmis", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks under bench/ (figures go to docs/benchmarks.md by hand)."""
    install_all(session)
    for script in sorted((ROOT / "bench").glob("*.py")):
        if not script.name.startswith("_"):
            session.run("python", str(script), *session.posargs)
