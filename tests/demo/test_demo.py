"""`cmis demo` end to end, in a subprocess, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytest.importorskip("cmis_example")
COLUMNS = ("accounts", "campaigns", "ad groups", "ads", "daily metric rows", "leads")


def _demo(tmp_path: Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMIS_")}
    env["TMPDIR"] = str(tmp_path)
    env["COLUMNS"] = "120"
    if home is not None:
        env["CMIS_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cmis_core", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _tables(stdout: str) -> dict[str, list[int]]:
    """The numbers of each platform's table, by platform slug."""
    found: dict[str, list[int]] = {}
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        title = re.match(r"^.+ \((\w+)\)\s*$", line)
        if title and i + 4 < len(lines) and all(c in lines[i + 2] for c in COLUMNS):
            found[title.group(1)] = [
                int(n.replace(",", "")) for n in re.findall(r"[\d,]+", lines[i + 4])
            ]
    return found


def _rows(home: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{home / 'cmis.db'}")
    with engine.connect() as conn:
        out = {
            name: int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in ("organizations", "integrations", "campaigns", "ads", "daily_metrics")
        }
    engine.dispose()
    return out


def test_demo_runs_on_a_fresh_machine_and_again(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    home = Path(re.search(r"database in (\S+) \(CMIS_HOME\)", first.stdout).group(1))  # type: ignore[union-attr]
    assert home.parent == tmp_path  # a temporary CMIS_HOME
    assert "organisation demo: created" in first.stdout
    tables = _tables(first.stdout)
    assert "example" in tables, first.stdout
    for platform, numbers in tables.items():
        assert len(numbers) == len(COLUMNS), (platform, numbers)
        assert all(n > 0 for n in numbers[:5]), (platform, numbers)  # accounts .. metric rows
    assert "signed webhooks delivered to cmis serve, 3 accepted" in first.stdout
    assert "through its OAuth flow" in first.stdout
    assert "token" not in first.stderr.lower()  # nothing secret, nothing noisy
    stored = _rows(home)
    assert stored["organizations"] == 1

    again = _demo(tmp_path, home)  # re-running is safe: same org, same rows, no duplicates
    assert again.returncode == 0, again.stdout + again.stderr
    assert "organisation demo: reused" in again.stdout
    assert "reconnected example" in again.stdout
    assert _tables(again.stdout) == tables
    assert _rows(home) == stored
