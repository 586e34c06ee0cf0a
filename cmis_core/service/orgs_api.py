"""`GET /api/orgs/{org}`: the organisation a key belongs to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cmis_core.service.api_keys import org_endpoint
from cmis_core.service.state import ServiceState
from cmis_core.store import Org


@org_endpoint
async def show_org(request: Request, org: Org) -> Response:
    return JSONResponse({"slug": org.slug, "name": org.name})


def routes(state: ServiceState) -> list[BaseRoute]:
    return [Route("/api/orgs/{org}", show_org, methods=["GET"])]
