"""The starlette app behind `cmis serve`.

Routes come from the modules in :data:`ROUTE_MODULES`, each exposing
``routes(state) -> list[BaseRoute]``: health checks, the org-scoped API, OAuth callbacks,
webhooks. Every request is logged once by :class:`AccessLogMiddleware` (uvicorn's own
access log is off, since it would print query strings with codes and tokens).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from cmis_core.factory import Registry, get_registry
from cmis_core.service.access_log import AccessLogMiddleware
from cmis_core.service.state import ServiceState
from cmis_core.settings import Settings
from cmis_core.store import Store, open_store

ROUTE_MODULES: tuple[str, ...] = (
    "cmis_core.service.health",
    "cmis_core.service.orgs_api",
    "cmis_core.service.oauth_routes",
    "cmis_core.service.webhook_routes",
    "cmis_core.service.metrics",
)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "not found"}, status_code=404)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "method not allowed"}, status_code=405)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "internal error"}, status_code=500)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    registry: Registry | None = None,
) -> Starlette:
    """Build the service app; opens the store from ``settings`` unless one is given."""
    settings = settings or Settings.from_env()
    owns_store = store is None
    state = ServiceState(
        settings=settings,
        store=store or open_store(settings),
        registry=registry or get_registry(),
    )
    routes: list[BaseRoute] = []
    for name in ROUTE_MODULES:
        routes.extend(importlib.import_module(name).routes(state))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for callback in state.on_shutdown:
            await callback()
        if owns_store:
            state.store.close()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessLogMiddleware)],
        exception_handlers={404: _not_found, 405: _method_not_allowed, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.cmis = state
    return app
