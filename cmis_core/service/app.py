"""The starlette app behind `cmis serve`.

Routes come from the modules in :data:`ROUTE_MODULES`, each exposing
``routes(state) -> list[BaseRoute]``: health checks, the org-scoped API, OAuth callbacks,
webhooks. Every request is logged once by :class:`AccessLogMiddleware` (uvicorn's own
access log is off, since it would print query strings with codes and tokens).

:class:`ServiceApp` takes ``/webhooks/{platform}`` on a short path: straight to the
webhook endpoint, logged by the same access-log function, past starlette's routing and
its middleware stack, which cost more CPU than the rest of a delivery's Python code. The
answers are the same either way (every status of
:mod:`cmis_core.webhooks.receive`, 500 as JSON for an unexpected error).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from cmis_core.factory import Registry, get_registry
from cmis_core.service.access_log import AccessLog, AccessLogMiddleware
from cmis_core.service.state import ServiceState
from cmis_core.service.webhook_routes import RECEIVER, WebhookEndpoint
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


WEBHOOK_PREFIX = "/webhooks/"


class ServiceApp(Starlette):
    """The starlette app, with ``/webhooks/{platform}`` served on a short path."""

    webhooks: WebhookEndpoint | None = None
    access_log: AccessLog = AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.webhooks is not None:
            path: str = scope["path"]
            if path.startswith(WEBHOOK_PREFIX) and not scope.get("root_path"):
                platform = path[len(WEBHOOK_PREFIX) :]
                if platform and "/" not in platform:
                    await self._webhook(scope, receive, send, platform)
                    return
        await super().__call__(scope, receive, send)

    async def _webhook(self, scope: Scope, receive: Receive, send: Send, platform: str) -> None:
        assert self.webhooks is not None
        started = time.perf_counter()
        status = 500
        try:
            status = await self.webhooks.serve(scope, receive, send, platform)
        finally:
            self.access_log(scope, status, started)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    registry: Registry | None = None,
) -> ServiceApp:
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

    access_log = AccessLog(settings.access_log_every)
    app = ServiceApp(
        routes=routes,
        middleware=[Middleware(AccessLogMiddleware, access_log=access_log)],
        exception_handlers={404: _not_found, 405: _method_not_allowed, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.cmis = state
    app.access_log = access_log
    receiver = state.shared.get(RECEIVER)
    if receiver is not None:
        app.webhooks = WebhookEndpoint(receiver)
    return app
