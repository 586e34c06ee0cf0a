"""Connect, callback, list and disconnect over HTTP.

- ``POST /api/orgs/{org}/integrations/{platform}/connect`` (API key): ``{"auth_url": ...}``;
  an optional JSON body may name an allowed ``redirect_uri`` and the ``scopes``.
- ``GET /oauth/callback/{platform}`` (the browser, sent back by the platform): completes
  the flow; answers HTML, or JSON when the client asks for ``application/json``.
- ``GET /api/orgs/{org}/integrations`` (API key): the integrations, never a token.
- ``DELETE /api/orgs/{org}/integrations/{platform}[?purge=true]`` (API key): revoke at the
  platform, delete the credentials; synced data stays unless ``purge``.

The callback's query (code, state) never reaches a log line: the access log masks it and
error messages are built from ids only.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cmis_core.auth import connect as flows
from cmis_core.auth import integrations
from cmis_core.auth.tokens import new_http_client
from cmis_core.errors import (
    CmisError,
    OAuthFlowError,
    PlatformError,
    PluginError,
    ReauthRequired,
    UnknownPlatform,
    UsageError,
)
from cmis_core.redaction import redact_text
from cmis_core.service.api_keys import org_endpoint
from cmis_core.service.state import ServiceState, run_in_threadpool, state_of
from cmis_core.store import Org
from cmis_core.vault import Vault


def _status(exc: CmisError) -> int:
    if isinstance(exc, UnknownPlatform):
        return 404
    if isinstance(exc, OAuthFlowError | UsageError | PluginError):
        return 400
    if isinstance(exc, ReauthRequired):
        return 409
    if isinstance(exc, PlatformError):
        return 502
    return 500


def _error_json(exc: CmisError) -> JSONResponse:
    body: dict[str, Any] = {"error": redact_text(exc.message)}
    if exc.hint:
        body["hint"] = redact_text(exc.hint)
    return JSONResponse(body, status_code=_status(exc))


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="referrer" content="no-referrer"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>{title}</h1><p>{body}</p></body></html>
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A minimal HTML answer (text escaped) for the browser that followed the redirect."""
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=html.escape(body)),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def routes(state: ServiceState) -> list[BaseRoute]:
    @functools.cache
    def vault() -> Vault:
        return Vault.from_settings(state.settings)

    def args() -> tuple[Any, Any, Any, Any]:
        return (state.store, vault(), state.registry, state.settings)

    @org_endpoint
    async def start(request: Request, org: Org) -> Response:
        platform = request.path_params["platform"]
        options: dict[str, Any] = {}
        if await request.body():
            try:
                options = await request.json()
            except ValueError:
                return JSONResponse({"error": "the body must be JSON"}, status_code=400)
            if not isinstance(options, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        scopes = options.get("scopes")
        if scopes is not None and (
            not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)
        ):
            return JSONResponse({"error": "scopes must be a list of strings"}, status_code=400)
        redirect_uri = options.get("redirect_uri")
        if redirect_uri is not None and not isinstance(redirect_uri, str):
            return JSONResponse({"error": "redirect_uri must be a string"}, status_code=400)
        try:
            async with new_http_client(state.settings) as http:
                begun = await flows.begin_connect(
                    *args(),
                    org_id=org.id,
                    platform=platform,
                    http=http,
                    redirect_uri=redirect_uri,
                    scopes=scopes,
                )
        except CmisError as exc:
            return _error_json(exc)
        return JSONResponse(
            {
                "auth_url": begun.auth_url,
                "redirect_uri": begun.redirect_uri,
                "expires_at": begun.expires_at.isoformat(),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def callback(request: Request) -> Response:
        platform = request.path_params["platform"]
        params = dict(request.query_params)
        as_json = _wants_json(request)
        try:
            async with new_http_client(state.settings) as http:
                done = await flows.complete_connect(
                    *args(), platform=platform, params=params, http=http
                )
        except CmisError as exc:
            if as_json:
                return _error_json(exc)
            return page("Connection failed", redact_text(exc.message), _status(exc))
        if as_json:
            return JSONResponse(done.to_json())
        name = state.registry.platform(platform).display_name
        who = done.integration.account or "your account"
        text = f"{name} is connected for {done.org} as {who}. You can close this window."
        if done.warnings:
            text += " Note: " + "; ".join(done.warnings) + "."
        return page(f"{name} connected", text)

    @org_endpoint
    async def listing(request: Request, org: Org) -> Response:
        def read() -> list[dict[str, Any]]:
            with state.store.org(org.id, write=False) as conn:
                return [i.to_json() for i in integrations.list_all(conn)]

        return JSONResponse({"org": org.slug, "integrations": await run_in_threadpool(read)})

    @org_endpoint
    async def remove(request: Request, org: Org) -> Response:
        platform = request.path_params["platform"]
        purge = request.query_params.get("purge", "").lower() in ("1", "true", "yes")
        try:
            async with new_http_client(state.settings) as http:
                done = await flows.disconnect(
                    *args(), org_id=org.id, platform=platform, http=http, purge=purge
                )
        except CmisError as exc:
            return _error_json(exc)
        return JSONResponse(done.to_json())

    return [
        Route("/api/orgs/{org}/integrations/{platform}/connect", start, methods=["POST"]),
        Route("/api/orgs/{org}/integrations", listing, methods=["GET"]),
        Route("/api/orgs/{org}/integrations/{platform}", remove, methods=["DELETE"]),
        Route("/oauth/callback/{platform}", callback, methods=["GET"]),
    ]


__all__ = ["page", "routes", "state_of"]
