"""`cmis connect / disconnect / integrations` as a user runs them (subprocesses, loopback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import update

from cmis_core.auth import integrations
from cmis_core.errors import ExitCode
from cmis_core.store import tables
from cmis_core.testing.databases import TestDatabase

from .conftest import Auth

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database(sqlite_database: TestDatabase) -> TestDatabase:
    """Subprocesses are slow to start: the CLI runs on SQLite only (the flows on both)."""
    return sqlite_database


@pytest.fixture
def env(auth: Auth) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        **auth.database.environ(),
        **auth.sandbox.env,
        "CMIS_SECRET_KEYS": auth.settings.secret_keys[0],
        "CMIS_PUBLIC_URL": "https://cmis.example.com",
        "CMIS_OAUTH_REDIRECT_URIS": f"http://127.0.0.1:{port}/oauth/callback/example",
        "CMIS_PLUGINS": "example",
        "CMIS_LOG_FORMAT": "json",
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cmis_core", *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cmis(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cmis_core", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline().strip()
        if line.startswith("http"):
            return line
    raise AssertionError("cmis connect printed no URL")


def connect_by_browser(env: dict[str, str], follow: Callable[[str], str] | None = None) -> str:
    proc = start(env, "connect", "example", "--org", "acme", "--timeout", "30")
    url = read_url(proc)
    with httpx2.Client(timeout=10) as browser:
        location = browser.get(url).headers["location"]
        page = browser.get(location)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert page.status_code == 200 and "You can close this window" in page.text
    return out


def test_connect_listens_once_then_lists(auth: Auth, env: dict[str, str]) -> None:
    out = connect_by_browser(env)
    assert "connected example for acme as Sandbox User (sbx_user_1)" in out
    listed = cmis(env, "integrations", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["org"], row["platform"], row["status"]) == ("acme", "example", "active")
    assert row["expires_in"].startswith("in ")
    table = cmis(env, "integrations", "list", "--org", "acme")
    assert "ORG" in table.stdout and "sbx_user_1" in table.stdout
    with auth.store.org(auth.org.id, write=False) as conn:
        stored = integrations.load(conn, auth.vault, "example")
    assert stored is not None
    for text in (out, listed.stdout, table.stdout, listed.stderr):
        assert stored.tokens.access_token not in text
        assert stored.tokens.refresh_token not in text  # type: ignore[operator]


def test_connect_with_pasted_url(auth: Auth, env: dict[str, str]) -> None:
    proc = start(env, "connect", "example", "--org", "acme", "--code")
    url = read_url(proc)
    with httpx2.Client(timeout=10) as browser:
        location = browser.get(url).headers["location"]
    out, err = proc.communicate(location + "\n", timeout=30)
    assert proc.returncode == 0, err
    assert "connected example for acme" in out


async def test_connect_with_token_stdin(
    auth: Auth, env: dict[str, str], http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    with auth.store.org(auth.org.id, write=False) as conn:
        stored = integrations.load(conn, auth.vault, "example")
    assert stored is not None
    done = cmis(
        env,
        "connect",
        "example",
        "--org",
        "acme",
        "--token-stdin",
        stdin=stored.tokens.access_token + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert "reconnected example for acme" in done.stdout
    bad = cmis(env, "connect", "example", "--org", "acme", "--token-stdin", stdin="nope\n")
    assert bad.returncode == ExitCode.USAGE
    assert "example refused the token given" in bad.stderr and "nope" not in bad.stderr


async def test_refresh_of_a_refused_grant_exits_77(
    auth: Auth, env: dict[str, str], http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    assert cmis(env, "integrations", "refresh", "example", "--org", "acme").returncode == 0
    with auth.store.org(auth.org.id) as conn:
        conn.execute(update(tables.integrations).values(status="needs_reauth"))
    done = cmis(env, "integrations", "refresh", "example", "--org", "acme")
    assert done.returncode == ExitCode.NOPERM
    assert "hint: reconnect with `cmis connect example --org acme`" in done.stderr


async def test_disconnect_revokes_and_keeps_the_row(
    auth: Auth, env: dict[str, str], http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    done = cmis(env, "disconnect", "example", "--org", "acme")
    assert done.returncode == 0, done.stderr
    assert "grant revoked at the platform; credentials deleted; synced data kept" in done.stdout
    [row] = json.loads(cmis(env, "integrations", "list", "--json").stdout)
    assert row["status"] == "disconnected"
    again = cmis(env, "disconnect", "example", "--org", "acme", "--purge", "--yes")
    assert again.returncode == 0 and "no credentials were stored" in again.stdout
    assert json.loads(cmis(env, "integrations", "list", "--json").stdout) == []
