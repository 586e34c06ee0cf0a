"""The ``lead_forms`` stream: which lead forms each account owns, so their leads route here.

Google pushes lead form submissions to a webhook (:mod:`cmis_google.webhooks`); a delivery
names its form (``form_id``: the id of the lead form *asset*) but not its account, and
the inbox routes it by that form id. Nothing else a sync reads names forms, so this stream
reads them, per account, with one GAQL ``search``::

    SELECT asset.id, asset.name, asset.type FROM asset WHERE asset.type = LEAD_FORM

and yields each form as a route (``Page.routes``: ``("form", <asset id>)``). It stores no
records: its entity is ``lead`` (the table the routed deliveries fill), and the sandbox's
``/_sandbox/expected`` count for it is 0.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import attrs

from cmis_core import EntityKind, Page, Partition, PlatformContext
from cmis_google.client import NAME, customer_id, login_customer_id, search
from cmis_google.gaql import Condition, Enum, Query

LEAD_FORMS_QUERY = Query(
    resource="asset",
    fields=("asset.id", "asset.name", "asset.type"),
    where=(Condition("asset.type", "=", Enum("LEAD_FORM")),),
)


def _login_of(account: Mapping[str, Any]) -> str | None:
    """The manager the account was reached through (``raw.login_customer_id``)."""
    raw = account.get("raw") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = {}
    login = raw.get("login_customer_id") if isinstance(raw, Mapping) else None
    return str(login) if login else None


def form_routes(rows: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """``("form", <asset id>)`` for each lead form asset among REST ``rows``."""
    out = []
    for row in rows:
        asset = row.get("asset")
        if not isinstance(asset, Mapping) or asset.get("type", "LEAD_FORM") != "LEAD_FORM":
            continue
        if asset.get("id"):
            out.append(("form", str(asset["id"])))
    return tuple(out)


@attrs.define(kw_only=True)
class LeadFormsStream:
    """Each enabled account's lead form assets, as webhook routes (no records)."""

    platform: str = NAME
    name: str = "lead_forms"
    entity: EntityKind = EntityKind.LEAD
    parent: str | None = "ad_accounts"
    query: Query = LEAD_FORMS_QUERY

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        if account is None:
            raise ValueError(f"stream {self.name} reads one Google Ads account at a time")
        if account.get("platform_status") not in (None, "ENABLED"):
            return []
        cid = customer_id(str(account["external_id"]))
        login = _login_of(account) or login_customer_id(ctx)
        return [Partition(key=cid, account_id=cid, params={"login_customer_id": login})]

    async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        assert partition.account_id is not None
        login = partition.params.get("login_customer_id")
        async for rows in search(ctx, partition.account_id, self.query, login=login):
            routes = form_routes(rows)
            if routes:
                yield Page(records=[], routes=routes)
