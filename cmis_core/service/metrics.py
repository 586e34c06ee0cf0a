"""`GET /metrics`: the webhook counters and inbox gauges in the Prometheus text format.

Counters are this process's (see :mod:`cmis_core.webhooks.metrics`); inbox depth and
processing lag are read from the database at each scrape. When the database does not
answer, ``cmis_webhook_inbox_up`` is 0 and the inbox gauges are left out.
"""

from __future__ import annotations

import datetime as dt

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cmis_core.service.state import ServiceState, state_of
from cmis_core.webhooks import inbox
from cmis_core.webhooks.metrics import InboxGauge, WebhookMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS = "webhooks.metrics"


async def metrics(request: Request) -> Response:
    """Every series, rendered for Prometheus."""
    state = state_of(request)
    counters = state.shared.setdefault(METRICS, WebhookMetrics())

    def read() -> list[InboxGauge]:
        with state.store.system(write=False) as conn:
            return inbox.gauges(conn, now=dt.datetime.now(dt.UTC))

    try:
        gauges: list[InboxGauge] | None = await run_in_threadpool(read)
    except Exception:
        gauges = None
    return Response(
        counters.render(gauges), media_type=None, headers={"content-type": CONTENT_TYPE}
    )


def routes(state: ServiceState) -> list[BaseRoute]:
    state.shared.setdefault(METRICS, WebhookMetrics())
    return [Route("/metrics", metrics, methods=["GET"])]
