"""Org-scoped API keys on `/api/orgs/{org}/...`: `Authorization: Bearer <key>`.

A missing or unknown key is 401; a valid key of another organisation, or an organisation
that does not exist, is 403 (so a key cannot probe which organisations exist).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cmis_core.errors import UnknownOrganization
from cmis_core.service.state import state_of
from cmis_core.store import Org

Endpoint = Callable[[Request], Awaitable[Response]]
OrgEndpoint = Callable[[Request, Org], Awaitable[Response]]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(message: str, error: str | None = None) -> JSONResponse:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return JSONResponse(
        {"error": message}, status_code=401, headers={"WWW-Authenticate": challenge}
    )


def org_endpoint(handler: OrgEndpoint) -> Endpoint:
    """Wrap a handler of `/api/orgs/{org}/...`: check the key, pass the organisation."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        token = bearer_token(request)
        if token is None:
            return _unauthorized("missing API key: send Authorization: Bearer <key>")
        store = state_of(request).store
        key_org = await run_in_threadpool(store.verify_api_key, token)
        if key_org is None:
            return _unauthorized("unknown or revoked API key", "invalid_token")
        try:
            org = await run_in_threadpool(store.get_org, request.path_params["org"])
        except UnknownOrganization:
            org = None
        if org is None or org.id != key_org:
            return JSONResponse(
                {"error": "this key does not give access to that organisation"}, status_code=403
            )
        return await handler(request, org)

    return endpoint
