"""Test plugins and helpers for the webhook tests: Example Ads deliveries that carry leads.

``LeadWebhooks`` is the example plugin's verifier, extended the way Google's is: a
``lead.created`` delivery carries the lead (``payload["lead"]``) and a secret of the sender
in the body (``form_key``) that is masked before storing. ``FetchingWebhooks`` instead
fetches each lead with the integration's token (an ``expand``), the way Meta's must.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from cmis_example import plugin as example_plugin
from cmis_example.webhooks import SCHEME, ExampleWebhooks
from sqlalchemy import insert

from cmis_core import hookimpl
from cmis_core.factory import Registry, load_plugins
from cmis_core.settings import Settings
from cmis_core.store import RouteTarget, Store
from cmis_core.store.tables import integrations, routes
from cmis_core.types import PlatformContext, WebhookEvent, WebhookProcessedEvent

SECRET = "whsec-test-0123456789"
VERIFY_TOKEN = "verify-test-token"
FORM_KEY = "form-key-0123456789abcdef"


class LeadWebhooks(ExampleWebhooks):
    """Example deliveries whose ``lead.created`` events carry the lead itself."""

    def parse(self, body: bytes) -> list[WebhookEvent]:
        events = super().parse(body)
        data = json.loads(body)
        lead = data.get("lead")
        if isinstance(lead, Mapping):
            return [
                WebhookEvent(
                    platform=e.platform,
                    kind=e.kind,
                    route_kind=e.route_kind,
                    route_id=e.route_id,
                    external_id=e.external_id,
                    occurred_at=e.occurred_at,
                    payload={**e.payload, "lead": dict(lead)},
                )
                for e in events
            ]
        return events

    def mask(self, body: bytes) -> bytes:
        data = json.loads(body)
        if isinstance(data, dict) and "form_key" in data:
            data["form_key"] = "***"
            return json.dumps(data, separators=(",", ":")).encode()
        return body


class FetchingWebhooks(ExampleWebhooks):
    """Example deliveries naming a lead by id; ``expand`` fetches it with the token."""

    async def expand(self, ctx: PlatformContext, event: WebhookEvent) -> list[Mapping[str, Any]]:
        response = await ctx.http.get(ctx.url("api") + "/v1/me")
        response.raise_for_status()
        me = response.json()
        return [{"external_id": event.external_id, "fields": {"owner": me["id"]}, "via": "api"}]


class ExamplePlugin:
    """The example plugin's hooks, with another webhook verifier."""

    def __init__(self, verifier: ExampleWebhooks, extra_streams: tuple[Any, ...] = ()) -> None:
        self.verifier = verifier
        self.extra_streams = extra_streams

    @hookimpl
    def cmis_platforms(self) -> Any:
        return example_plugin.cmis_platforms()

    @hookimpl
    def cmis_auth_providers(self) -> Any:
        return example_plugin.cmis_auth_providers()

    @hookimpl
    def cmis_webhook_verifiers(self) -> Any:
        return [self.verifier]

    @hookimpl
    def cmis_streams(self) -> Any:
        return [*example_plugin.cmis_streams(), *self.extra_streams]

    @hookimpl
    def cmis_sandboxes(self) -> Any:
        return example_plugin.cmis_sandboxes()


class ProcessedCounter:
    """An observer counting ``cmis_on_webhook_processed`` calls (from any thread)."""

    def __init__(self) -> None:
        self.events: list[WebhookProcessedEvent] = []
        self._lock = threading.Lock()

    @hookimpl
    def cmis_on_webhook_processed(self, event: WebhookProcessedEvent) -> None:
        with self._lock:
            self.events.append(event)


def registry_with(
    settings: Settings,
    verifier: ExampleWebhooks | None = None,
    *observers: object,
    streams: tuple[Any, ...] = (),
) -> Registry:
    plugin = ExamplePlugin(verifier or LeadWebhooks(), streams)
    builtins: list[tuple[str, object]] = [("example", plugin)]
    builtins += [(f"observer{i}", o) for i, o in enumerate(observers)]
    return load_plugins(settings, entry_points=[], builtins=builtins)


def env() -> dict[str, str]:
    return {
        "CMIS_EXAMPLE_WEBHOOK_SECRET": SECRET,
        "CMIS_EXAMPLE_VERIFY_TOKEN": VERIFY_TOKEN,
    }


def body_of(
    n: int | str,
    *,
    kind: str = "lead.created",
    account: str = "act_1000",
    lead: Mapping[str, Any] | None = None,
    **extra: Any,
) -> bytes:
    data: dict[str, Any] = {
        "id": f"evt_{n}",
        "type": kind,
        "account_id": account,
        "object_id": f"lead_{n}" if kind == "lead.created" else f"cmp_{n}",
        "occurred_at": "2026-11-01T10:00:00+00:00",
        **extra,
    }
    if lead is not None:
        data["lead"] = dict(lead)
    return json.dumps(data, separators=(",", ":")).encode()


def lead_of(n: int | str, **fields: str) -> dict[str, Any]:
    return {
        "external_id": f"lead_{n}",
        "form_id": "form_1",
        "created_time": "2026-11-01T10:00:00+00:00",
        "fields": fields or {"email": f"person{n}@example.org", "full_name": f"Person {n}"},
    }


def signed(body: bytes, *, secret: str = SECRET, timestamp: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if timestamp is None else timestamp))
    return {
        "content-type": "application/json",
        "x-example-timestamp": ts,
        "x-example-signature": SCHEME.sign(secret, body, timestamp=ts),
    }


def connect_route(
    store: Store, org_slug: str, *, kind: str = "ad_account", external_id: str = "act_1000"
) -> RouteTarget:
    """An organisation with an example integration that routes ``external_id``."""
    try:
        org = store.get_org(org_slug)
    except Exception:
        org = store.create_org(org_slug)
    with store.org(org.id) as conn:
        found = conn.execute(
            integrations.select().where(
                integrations.c.org_id == org.id, integrations.c.platform == "example"
            )
        ).first()
        if found is None:
            integration_id = conn.execute(
                insert(integrations)
                .values(org_id=org.id, platform="example", status="active")
                .returning(integrations.c.id)
            ).scalar_one()
        else:
            integration_id = found.id
        conn.execute(
            insert(routes).values(
                org_id=org.id,
                platform="example",
                kind=kind,
                external_id=external_id,
                integration_id=integration_id,
            )
        )
    return RouteTarget(org_id=org.id, integration_id=int(integration_id))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
