"""Org-scoped API keys on `/api/orgs/{org}/...`: `Authorization: Bearer <key>`.

A missing or unknown key is 401; a valid key of another organisation is 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

KeyVerifier = Callable[[str], Awaitable[str | None]]
"""Maps a presented key to the slug of the organisation it belongs to, or None."""


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def check_org_access(request: Request, verify: KeyVerifier) -> JSONResponse | None:
    """None when the request's key belongs to the path's org; else the error response."""
    token = bearer_token(request)
    if token is None:
        return JSONResponse(
            {"error": "missing API key", "hint": "send Authorization: Bearer <key>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    org = await verify(token)
    if org is None:
        return JSONResponse(
            {"error": "unknown or revoked API key"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if org != request.path_params.get("org"):
        return JSONResponse({"error": "this key does not give access to that organisation"}, 403)
    return None
