"""Keeping tokens fresh: on demand, ahead of expiry, single flight, refusals, transient errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import attrs
import httpx2
import pytest
from cmis_example.auth import ExampleAuth

from cmis_core.auth import connect as flows
from cmis_core.auth import integrations, lease
from cmis_core.auth.tokens import (
    RefreshPolicy,
    fresh_tokens,
    on_token_rejected,
    refresh_due,
    token_refresher,
)
from cmis_core.errors import (
    ExitCode,
    RateLimited,
    ReauthRequired,
    TokenRejected,
    Transient,
)
from cmis_core.markers import hookimpl
from cmis_core.types import (
    Capability,
    IntegrationStatus,
    Platform,
    PlatformContext,
    TokenSet,
    utcnow,
)

from .conftest import Auth, example_plugin, make_observer, registry_with

FAST = RefreshPolicy(window=600, lease_seconds=5, attempts=3, backoff=0.01, poll=0.02)
TOKEN = "POST /oauth/token"
ROOT = Path(__file__).parents[2]


def stored(auth: Auth) -> integrations.StoredTokens:
    with auth.store.org(auth.org.id, write=False) as conn:
        found = integrations.load(conn, auth.vault, "example")
    assert found is not None
    return found


def set_expiry(auth: Auth, when: dt.datetime) -> TokenSet:
    """Rewrite the stored tokens with another access expiry (a version bump, no HTTP)."""
    current = stored(auth)
    tokens = attrs.evolve(current.tokens, expires_at=when)
    with auth.store.org(auth.org.id) as conn:
        assert integrations.write_tokens(
            conn, auth.vault, current.integration, tokens, expected_version=current.version
        )
    return tokens


async def token_calls(auth: Auth, http: httpx2.AsyncClient) -> int:
    return int((await auth.control(http).stats())["calls"].get(TOKEN, 0))


async def identify(auth: Auth, http: httpx2.AsyncClient, tokens: TokenSet) -> str:
    from cmis_core.auth.tokens import platform_context

    ctx = platform_context(auth.registry, auth.settings, "example", http=http)
    return (await auth.registry.auth_provider("example").identify(ctx, tokens)).user_id


async def test_fresh_tokens_leaves_valid_tokens_alone(auth: Auth, http: httpx2.AsyncClient) -> None:
    await auth.connect(http)
    before = stored(auth)
    calls = await token_calls(auth, http)
    tokens = await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    assert tokens.access_token == before.tokens.access_token
    assert await token_calls(auth, http) == calls


async def test_fresh_tokens_refreshes_ahead_and_stores_the_rotation(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    old = set_expiry(auth, utcnow() + dt.timedelta(seconds=60))
    version = stored(auth).version
    tokens = await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    assert tokens.access_token != old.access_token
    assert tokens.refresh_token and tokens.refresh_token != old.refresh_token  # rotated
    after = stored(auth)
    assert after.version == version + 1
    assert after.tokens.refresh_token == tokens.refresh_token
    assert after.integration.access_expires_at == tokens.expires_at
    assert await identify(auth, http, tokens) == "sbx_user_1"


async def test_rejected_token_refreshes_once_then_reuses(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    old = stored(auth).tokens
    assert await auth.control(http).expire_tokens(old.access_token) == 1
    with pytest.raises(TokenRejected):
        await identify(auth, http, old)
    calls = await token_calls(auth, http)
    fresh = await on_token_rejected(
        *auth.args(), auth.org.id, "example", http=http, rejected=old, policy=FAST
    )
    assert await identify(auth, http, fresh) == "sbx_user_1"
    again = await on_token_rejected(
        *auth.args(), auth.org.id, "example", http=http, rejected=old, policy=FAST
    )
    assert again.access_token == fresh.access_token
    assert await token_calls(auth, http) == calls + 1


async def test_token_refresher_resigns_the_request(auth: Auth, http: httpx2.AsyncClient) -> None:
    await auth.connect(http)
    old = stored(auth).tokens
    await auth.control(http).expire_tokens(old.access_token)
    request = http.build_request(
        "GET",
        auth.sandbox.base_url + "/v1/me",
        headers={"Authorization": f"Bearer {old.access_token}"},
    )
    callback = token_refresher(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    renewed = await callback(request)
    assert renewed is not None
    assert old.access_token not in renewed.headers["authorization"]
    response = await http.send(renewed)
    assert response.status_code == 200
    assert response.json()["id"] == "sbx_user_1"


async def test_refused_refresh_marks_needs_reauth_once(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    old = stored(auth).tokens
    await auth.control(http).revoke(old.refresh_token)
    set_expiry(auth, utcnow() - dt.timedelta(seconds=1))
    with pytest.raises(ReauthRequired) as info:
        await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    assert info.value.exit_code == ExitCode.NOPERM
    assert info.value.hint == "reconnect with `cmis connect example --org acme`"
    assert stored(auth).integration.status == IntegrationStatus.NEEDS_REAUTH
    assert auth.observer.kinds() == ["connected", "needs_reauth"]
    assert auth.observer.events[1][1].reason
    calls = await token_calls(auth, http)
    with pytest.raises(ReauthRequired, match="needs_reauth"):
        await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    report = await refresh_due(*auth.args(), policy=FAST)
    assert report.outcomes == ()  # the runner no longer picks it up
    assert await token_calls(auth, http) == calls, "a refused grant was tried again"
    assert auth.observer.kinds() == ["connected", "needs_reauth"]
    # reconnecting brings it back
    await auth.connect(http)
    assert stored(auth).integration.status == IntegrationStatus.ACTIVE


@pytest.mark.parametrize("kind", ["server_error", "throttle"])
async def test_transient_refresh_failures_retry(
    auth: Auth, http: httpx2.AsyncClient, kind: str
) -> None:
    await auth.connect(http)
    set_expiry(auth, utcnow() - dt.timedelta(seconds=1))
    await auth.control(http).fault(
        path="/oauth/token", method="POST", kind=kind, times=1, retry_after=0.05
    )
    tokens = await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    assert await identify(auth, http, tokens) == "sbx_user_1"
    assert stored(auth).integration.status == IntegrationStatus.ACTIVE


@pytest.mark.parametrize(
    ("kind", "error"), [("server_error", Transient), ("throttle", RateLimited)]
)
async def test_persistent_transient_failure_leaves_the_credential(
    auth: Auth, http: httpx2.AsyncClient, kind: str, error: type[Exception]
) -> None:
    await auth.connect(http)
    set_expiry(auth, utcnow() - dt.timedelta(seconds=1))
    before = stored(auth)
    await auth.control(http).fault(
        path="/oauth/token", method="POST", kind=kind, times=10, retry_after=0.01
    )
    calls = await token_calls(auth, http)
    policy = attrs.evolve(FAST, attempts=2)
    with pytest.raises(error):
        await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=policy)
    await auth.control(http).clear_faults()
    assert await token_calls(auth, http) == calls + policy.attempts
    after = stored(auth)
    assert after.version == before.version
    assert after.tokens.refresh_token == before.tokens.refresh_token
    assert after.integration.status == IntegrationStatus.ACTIVE
    assert auth.observer.kinds() == ["connected"]


async def test_killed_holder_delays_by_at_most_the_lease(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    integration = stored(auth).integration
    set_expiry(auth, utcnow() - dt.timedelta(seconds=1))
    policy = attrs.evolve(FAST, lease_seconds=1.0)
    # a holder that claimed the lease and died (never released, never wrote)
    assert lease.claim(auth.store, f"refresh:{auth.org.id}:{integration.id}", "dead:1:x", 1.0)
    started = time.monotonic()
    tokens = await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=policy)
    waited = time.monotonic() - started
    assert 0.7 <= waited < 1.0 + 1.5, waited
    assert await identify(auth, http, tokens) == "sbx_user_1"


def run_workers(env: dict[str, str]) -> list[dict[str, list[str]]]:
    """Start the two worker processes together; their JSON reports."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.auth.refresh_worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


async def test_twenty_workers_in_two_processes_refresh_once(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    set_expiry(auth, utcnow() - dt.timedelta(seconds=1))
    await auth.control(http).reset_stats()
    env = {
        **os.environ,
        **auth.database.environ(),
        **auth.sandbox.env,
        "CMIS_SECRET_KEYS": auth.settings.secret_keys[0],
        "CMIS_LOG_LEVEL": "error",
        "WORKER_ORG": str(auth.org.id),
        "WORKER_THREADS": "10",
        "WORKER_START": str(time.time() + 2.0),
        "PYTHONPATH": str(ROOT),
    }
    outputs = await asyncio.to_thread(run_workers, env)
    errors = [e for o in outputs for e in o["errors"]]
    assert errors == []
    hashes = [h for o in outputs for h in o["tokens"]]
    assert len(hashes) == 20
    final = stored(auth).tokens
    assert set(hashes) == {hashlib.sha256(final.access_token.encode()).hexdigest()}
    assert await token_calls(auth, http) == 1
    assert await identify(auth, http, final) == "sbx_user_1"


# --------------------------------------------------------------------------- the runner


async def test_refresh_due_refreshes_what_expires_within_the_window(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    await auth.connect(http)
    far = set_expiry(auth, utcnow() + dt.timedelta(hours=2))
    report = await refresh_due(*auth.args(), policy=attrs.evolve(FAST, warning_days=0))
    assert [o.outcome for o in report.outcomes] == []
    assert stored(auth).tokens.access_token == far.access_token
    set_expiry(auth, utcnow() + dt.timedelta(minutes=5))
    report = await refresh_due(*auth.args(), policy=attrs.evolve(FAST, warning_days=0))
    assert [o.outcome for o in report.outcomes] == ["refreshed"]
    assert stored(auth).tokens.access_token != far.access_token


async def test_unrenewable_token_warns_once_then_needs_reauth(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    connected = await auth.connect(http)
    pasted = stored(auth).tokens.access_token
    await flows.connect_with_token(
        *auth.args(), org_id=auth.org.id, platform="example", access_token=pasted, http=http
    )
    assert stored(auth).tokens.refresh_token is None
    set_expiry(auth, utcnow() + dt.timedelta(days=3))
    first = await refresh_due(*auth.args(), policy=FAST)
    second = await refresh_due(*auth.args(), policy=FAST)
    assert [o.outcome for o in first.outcomes] == ["expiring"]
    assert [o.outcome for o in second.outcomes] == ["skipped"]
    expiring = [e for k, e in auth.observer.events if k == "expiring"]
    assert len(expiring) == 1
    assert expiring[0].integration_id == str(connected.integration.id)
    assert expiring[0].expires_at is not None
    # still valid: work goes on with it
    tokens = await fresh_tokens(*auth.args(), auth.org.id, "example", http=http, policy=FAST)
    assert tokens.access_token == pasted
    set_expiry(auth, utcnow() - dt.timedelta(seconds=1))
    third = await refresh_due(*auth.args(), policy=FAST)
    assert [o.outcome for o in third.outcomes] == ["needs_reauth"]
    assert stored(auth).integration.status == IntegrationStatus.NEEDS_REAUTH


class _ExchangeAuth(ExampleAuth):
    """Meta-like: no refresh token; ``refresh`` re-exchanges the token, expiry unchanged."""

    exchanged = 0

    async def refresh(self, ctx: PlatformContext, tokens: TokenSet) -> TokenSet:
        type(self).exchanged += 1
        return attrs.evolve(tokens, extra={"exchanged": type(self).exchanged})


class _ExchangePlugin:
    cmis_sandboxes = staticmethod(example_plugin.cmis_sandboxes)

    @hookimpl
    def cmis_platforms(self) -> list[Platform]:
        record = example_plugin.cmis_platforms()[0]
        caps = {*record.capabilities, Capability.TOKEN_EXCHANGE} - {Capability.REFRESH}
        return [attrs.evolve(record, capabilities=caps)]

    @hookimpl
    def cmis_auth_providers(self) -> list[_ExchangeAuth]:
        return [_ExchangeAuth()]


async def test_exchange_platform_renews_ahead_and_warns_when_it_cannot_extend(
    auth: Auth, http: httpx2.AsyncClient
) -> None:
    _ExchangeAuth.exchanged = 0
    observer, hooks = make_observer()
    auth.registry = registry_with(("example", _ExchangePlugin()), ("observer", hooks))
    await auth.connect(http)
    pasted = stored(auth).tokens.access_token
    await flows.connect_with_token(
        *auth.args(), org_id=auth.org.id, platform="example", access_token=pasted, http=http
    )
    set_expiry(auth, utcnow() + dt.timedelta(days=30))
    assert (await refresh_due(*auth.args(), policy=FAST)).outcomes == ()  # not due yet
    assert _ExchangeAuth.exchanged == 0
    set_expiry(auth, utcnow() + dt.timedelta(days=5))
    report = await refresh_due(*auth.args(), policy=FAST)
    assert [(o.outcome, o.detail) for o in report.outcomes] == [("refreshed", "expiring")]
    assert _ExchangeAuth.exchanged == 1
    assert stored(auth).tokens.extra == {"exchanged": 1}
    assert [k for k, _ in observer.events].count("expiring") == 1
    await refresh_due(*auth.args(), policy=FAST)
    assert [k for k, _ in observer.events].count("expiring") == 1  # once per expiry
