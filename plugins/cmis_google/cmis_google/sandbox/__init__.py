"""A fake of the Google Ads REST API, built with the core's sandbox toolkit.

Routes (``{v}`` is any live major version, v23 to v26; older ones answer 404):

- ``GET  /o/oauth2/v2/auth``, ``POST /token``, ``POST /revoke``, ``GET|POST /tokeninfo``
- ``GET  /{v}/customers:listAccessibleCustomers``
- ``POST /{v}/customers/{id}/googleAds:search`` (GAQL; 10,000-row pages behind
  ``nextPageToken``; ``pageSize`` refused with ``PAGE_SIZE_NOT_SUPPORTED``)
- ``POST /{v}/customers/{id}/googleAds:searchStream`` (a JSON array of batches)
- GAQL resources: ``customer_client``, ``customer``, ``campaign``, ``ad_group``,
  ``ad_group_ad`` and ``asset`` (each client's lead form asset, the form its lead
  deliveries name, and a text asset)
- control: the toolkit's ``/_sandbox/`` API, plus ``POST|DELETE /_sandbox/customers/deny``
  (``{"customer_id", "code"}``: that account answers 403 until cleared) and
  ``POST /_sandbox/leads/deliver`` (``{"url", "count", "is_test"}``: POST lead form
  deliveries to cmis, for the demo)

Access follows Google's rules: a client below a manager needs ``login-customer-id`` set
to a manager the user reaches; a quota error carries ``retryDelay``; expired and revoked
access tokens answer 401 with the AuthenticationError code. ``SandboxOptions.extra``:
``page_size`` (default 10,000: tests set it low to exercise paging), ``history_days``
(90), ``lookback_days`` (14, for ``/_sandbox/expected``), ``deny`` (``{id: code}``),
``rate``/``burst`` (per-customer bucket).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmis_core.contract import ASGIApp, SandboxOptions
from cmis_core.testing.sandbox import (
    Call,
    FakePlatform,
    Grant,
    OAuthConfig,
    SandboxError,
    preset,
    sandbox_env,
)
from cmis_google.sandbox.data import SIZES, Accounts
from cmis_google.sandbox.engine import Engine
from cmis_google.sandbox.leads import LeadDeliveries
from cmis_google.sandbox.oauth import GoogleOAuthServer
from cmis_google.sandbox.style import GoogleStyle, google_error

CLIENT_ID = "google-sandbox-client.apps.googleusercontent.com"
CLIENT_SECRET = "google-sandbox-secret"
WEBHOOK_KEY = "google-sandbox-lead-key"
SCOPE = "https://www.googleapis.com/auth/adwords"
LIVE = range(23, 27)
CUSTOMER = re.compile(r"^\d{10}$")
DENY_MESSAGES = {
    "USER_PERMISSION_DENIED": "User doesn't have permission to access customer.",
    "CUSTOMER_NOT_ENABLED": "The customer account can't be accessed because it is not yet "
    "enabled or has been deactivated.",
    "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION": "The Google Cloud project is not approved "
    "for production access.",
}


def _rate_key(request: Request, grant: Grant | None) -> str:
    return f"customer:{request.path_params.get('customer_id', 'app')}"


def build(options: SandboxOptions) -> ASGIApp:
    """The Google Ads sandbox for ``options``."""
    accounts = Accounts(
        options.seed,
        preset(options.size, SIZES),
        history_days=int(options.extra.get("history_days", 90)),
    )
    engine = Engine(accounts, page_size=int(options.extra.get("page_size", 10_000)))
    lookback = int(options.extra.get("lookback_days", 14))
    denied: dict[int, str] = {
        int(k): str(v) for k, v in dict(options.extra.get("deny", {})).items()
    }
    leads = LeadDeliveries(
        accounts, key=WEBHOOK_KEY, form_id=accounts.lead_form_id(accounts.clients[0].id)
    )

    def expected() -> dict[str, int]:
        clients = [c for c in accounts.clients if c.status == "ENABLED"]
        days = min(lookback, accounts.history_days)
        campaigns = sum(len(accounts.campaigns(c.id)) for c in clients)
        groups = sum(len(accounts.ad_groups(c.id)) for c in clients)
        ads = sum(len(accounts.ads(c.id)) for c in clients)
        return {
            "ad_accounts": len(clients),
            "campaigns": campaigns,
            "ad_groups": groups,
            "ads": ads,
            "campaign_metrics": campaigns * days,
            "ad_group_metrics": groups * days,
            "ad_metrics": ads * days,
            "lead_forms": 0,  # routes only (one lead form per client), no records
        }

    fake = FakePlatform(
        "google",
        options=options,
        oauth=OAuthConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorize_path="/o/oauth2/v2/auth",
            token_path="/token",
            revoke_path="/revoke",
            client_auth="any",
            scopes=(SCOPE, "openid", "email"),
            rotate_refresh=False,
            token_ttl=options.token_ttl,
        ),
        style=GoogleStyle(),
        webhooks=leads,
        expected=expected,
        rate=10.0,
        burst=50,
        rate_key=_rate_key,
    )
    assert fake.oauth is not None
    fake.oauth = GoogleOAuthServer(fake.oauth.config, fake.tokens)

    def version(call: Call) -> None:
        match = re.fullmatch(r"v(\d+)", str(call.path.get("version", "")))
        if match is None or int(match.group(1)) not in LIVE:
            raise SandboxError(404, "NOT_FOUND", "Method not found.")

    def customer(call: Call) -> int:
        """The customer of the URL, after Google's access checks."""
        raw = str(call.path["customer_id"])
        if not CUSTOMER.match(raw):
            raise SandboxError(400, "requestError.INVALID_CUSTOMER_ID", "Invalid customer ID.")
        cid = int(raw)
        if cid not in accounts.customers:
            raise SandboxError(
                401,
                "authenticationError.CUSTOMER_NOT_FOUND",
                "No customer found for the provided customer id.",
            )
        login_header = call.request.headers.get("login-customer-id")
        if login_header is not None:
            if not CUSTOMER.match(login_header):
                raise SandboxError(
                    400, "requestError.INVALID_CUSTOMER_ID", "Invalid login-customer-id header."
                )
            login = int(login_header)
            if login not in accounts.accessible or not accounts.manages(login, cid):
                raise SandboxError(403, "authorizationError.USER_PERMISSION_DENIED", _denied_text())
        elif cid not in accounts.accessible:
            raise SandboxError(403, "authorizationError.USER_PERMISSION_DENIED", _denied_text())
        code = denied.get(cid)
        if code is not None:
            raise SandboxError(
                403, f"authorizationError.{code}", DENY_MESSAGES.get(code, "Access denied.")
            )
        return cid

    async def query_text(call: Call) -> tuple[str, dict[str, Any]]:
        try:
            body = json.loads(await call.request.body() or b"{}")
        except ValueError:
            raise SandboxError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise SandboxError(400, "queryError.QUERY_ERROR", "The query is required.")
        if "pageSize" in body or "page_size" in body:
            raise SandboxError(
                400,
                "requestError.PAGE_SIZE_NOT_SUPPORTED",
                "Setting the page size is not supported.",
            )
        return body["query"], body

    @fake.get("/{version}/customers:listAccessibleCustomers")
    async def accessible(call: Call) -> Any:
        version(call)
        return call.json({"resourceNames": [f"customers/{cid}" for cid in accounts.accessible]})

    @fake.post("/{version}/customers/{customer_id}/googleAds:search")
    async def search(call: Call) -> Any:
        version(call)
        cid = customer(call)
        text, body = await query_text(call)
        token = body.get("pageToken") or None
        return call.json(engine.page(cid, text, token, fake.clock.now()))

    @fake.post("/{version}/customers/{customer_id}/googleAds:searchStream")
    async def search_stream(call: Call) -> Any:
        version(call)
        cid = customer(call)
        text, _ = await query_text(call)
        return call.json(engine.stream(cid, text))

    # ------------------------------------------------------------------ control
    async def deny(request: Request) -> Response:
        if request.method == "DELETE":
            denied.clear()
            return JSONResponse({"denied": 0})
        data = json.loads(await request.body() or b"{}")
        try:
            cid = int(str(data["customer_id"]).replace("-", ""))
        except (KeyError, ValueError):
            return JSONResponse({"error": "customer_id is required"}, status_code=400)
        denied[cid] = str(data.get("code") or "USER_PERMISSION_DENIED")
        return JSONResponse({"denied": len(denied)})

    async def deliver(request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        url, count = data.get("url"), int(data.get("count", 1))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return JSONResponse({"error": "url (http or https) is required"}, status_code=400)
        statuses = []
        async with httpx2.AsyncClient(timeout=10.0) as client:
            for _ in range(max(0, min(count, 1000))):
                leads._count += 1
                body = leads.body(leads._count, key=WEBHOOK_KEY, is_test=bool(data.get("is_test")))
                answer = await client.post(url, json=body)
                statuses.append(answer.status_code)
        return JSONResponse({"delivered": len(statuses), "statuses": statuses})

    fake.add_route(Route("/_sandbox/customers/deny", deny, methods=["POST", "DELETE"]))
    fake.add_route(Route("/_sandbox/leads/deliver", deliver, methods=["POST"]))
    return fake.app()


def _denied_text() -> str:
    return (
        "User doesn't have permission to access customer. Note: If you're accessing a client "
        "customer, the manager's customer id must be set in the 'login-customer-id' header."
    )


def env(base_url: str) -> dict[str, str]:
    """The settings that point the plugin at a sandbox served at ``base_url``."""
    return sandbox_env(
        "google",
        base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        WEBHOOK_KEY=WEBHOOK_KEY,
    )


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "WEBHOOK_KEY", "build", "env", "google_error"]
