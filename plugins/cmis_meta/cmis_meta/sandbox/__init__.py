"""A fake of Meta's Graph API (Marketing and Lead Ads surface), built with the core's toolkit.

One app serves both hosts (``www.facebook.com`` for the login dialog, ``graph.facebook.com``
for the rest). Sizes (``SandboxOptions.size``):

- ``small`` (tests): 2 accounts (USD, EUR) x 6 campaigns x 2 ad sets x 2 ads, 10 days;
- ``medium``: 3 accounts x 40 x 3 x 3, 28 days;
- ``bench``: 1 account, 200 campaigns, 1,000 ad sets, 5,000 ads, 30 days = 150,000 ad-day
  insight rows, served lazily.

``SandboxOptions.extra``: ``require_proof`` (refuse calls without ``appsecret_proof``),
``job_polls``, ``job_max_rows``, ``sync_max_rows`` (report-run behaviour), ``rate`` and
``burst`` (the per-account and per-app buckets). Tokens expire as the options say; the
control API (``/_sandbox/...`` and ``/_sandbox/meta/...``) expires, revokes, injects faults,
touches entities (their ``updated_time`` moves to now), changes limits and mints a
never-expiring system-user token.
"""

from __future__ import annotations

from typing import Any

from cmis_core.contract import ASGIApp, SandboxOptions
from cmis_core.testing.sandbox import (
    Delivery,
    FakePlatform,
    Handshake,
    HmacWebhooks,
    OAuthConfig,
    preset,
    sandbox_env,
)
from cmis_meta.client import SCOPES
from cmis_meta.sandbox.data import SIZES, MetaData
from cmis_meta.sandbox.graph import Limits, ad_account_sample, control_routes, install, lead_sample
from cmis_meta.sandbox.oauth import MetaOAuthServer
from cmis_meta.sandbox.style import MetaStyle
from cmis_meta.webhooks import SCHEME, SIGNATURE_HEADER

CLIENT_ID = "1234567890"
CLIENT_SECRET = "meta-sandbox-app-secret"
VERIFY_TOKEN = "meta-sandbox-verify-token"
CHALLENGE = "1158201444"


def _handshake() -> Handshake:
    query = {"hub.mode": "subscribe", "hub.challenge": CHALLENGE, "hub.verify_token": VERIFY_TOKEN}
    return Handshake(
        request=Delivery(method="GET", path="/webhooks/meta", query=query), body=CHALLENGE.encode()
    )


def build(options: SandboxOptions) -> ASGIApp:
    """The Meta sandbox for ``options``."""
    data = MetaData(options.seed, preset(options.size, SIZES))
    extra: dict[str, Any] = dict(options.extra)
    limits = Limits(
        job_polls=int(extra.get("job_polls", 2)),
        job_max_rows=int(extra.get("job_max_rows", 250_000)),
        sync_max_rows=int(extra.get("sync_max_rows", 50_000)),
        require_proof=bool(extra.get("require_proof", False)),
    )

    def sample(n: int) -> dict[str, Any]:
        return lead_sample(data, n) if n % 2 else ad_account_sample(data, n)

    fake = FakePlatform(
        "meta",
        options=options,
        style=MetaStyle(),
        webhooks=HmacWebhooks(
            path="/webhooks/meta",
            scheme=SCHEME,
            secret=CLIENT_SECRET,
            signature_header=SIGNATURE_HEADER,
            sample=sample,
            handshake=_handshake,
        ),
        expected=data.expected,
        rate=50.0,
        burst=600,
    )
    fake.oauth = MetaOAuthServer(
        OAuthConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorize_path="/{version:graph_version}/dialog/oauth",
            token_path="/{version:graph_version}/oauth/access_token",
            revoke_path=None,
            token_methods=("GET", "POST"),
            client_auth="client_secret_post",
            scopes=(*SCOPES, "public_profile", "email"),
            scope_separator=",",
            token_ttl=options.token_ttl,
            refresh_tokens=False,
            user_id="10215241773831025",
        ),
        fake.tokens,
    )
    install(fake, data, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, limits=limits)
    for route in control_routes(fake, data, limits):
        fake.add_route(route)
    return fake.app()


def env(base_url: str) -> dict[str, str]:
    """The settings that point the plugin at a sandbox served at ``base_url``."""
    return sandbox_env(
        "meta",
        base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        WEBHOOK_VERIFY_TOKEN=VERIFY_TOKEN,
        REPORT_POLL_SECONDS="0.01",
    )
