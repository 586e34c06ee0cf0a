"""`GET /healthz` (the process answers) and `GET /readyz` (the database answers too)."""

from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from cmis_core.service.state import ServiceState, state_of


async def healthz(request: Request) -> JSONResponse:
    """Liveness: always 200 while the process serves."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database answers, else 503."""
    store = state_of(request).store

    def ping() -> None:
        with store.system(write=False) as conn:
            conn.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def routes(state: ServiceState) -> list[BaseRoute]:
    return [Route("/healthz", healthz), Route("/readyz", readyz)]
