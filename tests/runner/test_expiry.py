"""Meta's grant (no refresh token): its data-access expiry marks it needs_reauth, once."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx2
import pytest

from cmis_core.auth import connect as flows
from cmis_core.auth import integrations
from cmis_core.contract import SandboxOptions
from cmis_core.errors import ExitCode
from cmis_core.factory import Registry, load_plugins
from cmis_core.runner.local import run_due
from cmis_core.runner.work import Runtime
from cmis_core.settings import Settings
from cmis_core.testing.databases import TestDatabase
from cmis_core.testing.serve import RunningSandbox, serve_sandbox

from .support import integration_row, runner_environ

pytest.importorskip("cmis_meta")


def _registry() -> Registry:
    eps = [ep for ep in md.entry_points(group="cmis") if ep.name == "meta"]
    return load_plugins(Settings.from_env({"CMIS_PLUGINS_STRICT": "1"}), entry_points=eps)


@pytest.fixture(scope="module")
def meta() -> Iterator[RunningSandbox]:
    with serve_sandbox(_registry().sandbox("meta"), SandboxOptions(rate_limit=False)) as running:
        yield running


async def test_an_expired_data_access_grant_needs_reauth_once(
    sqlite_database: TestDatabase, meta: RunningSandbox
) -> None:
    env = {**runner_environ(sqlite_database.environ(), meta.env), "CMIS_PLUGINS": "meta"}
    with Runtime.open(Settings.from_env(env), registry=_registry()) as rt:
        org = rt.store.create_org("acme")
        async with httpx2.AsyncClient(timeout=10) as http:
            args = (rt.store, rt.vault, rt.registry, rt.settings)
            start = await flows.begin_connect(*args, org_id=org.id, platform="meta", http=http)
            answer = await http.get(start.auth_url)
            params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
            await flows.complete_connect(*args, platform="meta", params=params, http=http)
        first = await run_due(rt)
        assert first.exit_code == ExitCode.OK, first.to_json()

        gone = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        with rt.store.org(org.id) as conn:
            stored = integrations.load(conn, rt.vault, "meta")
            assert stored is not None
            tokens = attrs.evolve(
                stored.tokens, extra={**stored.tokens.extra, "data_access_expires_at": gone}
            )
            integrations.write_tokens(
                conn, rt.vault, stored.integration, tokens, expected_version=stored.version
            )
        second = await run_due(rt)  # the access token is fine; the data access is not
        assert second.exit_code == ExitCode.NOPERM, second.to_json()
        assert [(i.platform, i.status) for i in second.integrations] == [("meta", "needs_reauth")]
        assert integration_row(rt.store, org.id)["status"] == "needs_reauth"
        third = await run_due(rt)
        assert third.exit_code == ExitCode.OK
        assert [i.earlier for i in third.integrations] == [True]
