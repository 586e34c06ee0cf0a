"""Answering GAQL: which rows a query selects, in which order, and how they are encoded.

The engine parses the query with :func:`cmis_google.gaql.parse`, checks the fields
against the resource's catalog, pushes ``segments.date`` conditions down to the days it
generates, filters and sorts the rest, and pages the result by 10,000 rows behind opaque
page tokens bound to the customer and the exact query text (a token with another query is
refused, and tokens expire after two hours, as Google documents). Rows are encoded as the
REST API does: nested camelCase objects, int64 as strings, default values omitted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from cmis_core.testing.sandbox import SandboxError
from cmis_google.gaql import Condition, GaqlError, Query, parse
from cmis_google.sandbox.data import Accounts, Row

TOKEN_TTL = 2 * 3600

ID = "int64"
_CUSTOMER_CLIENT = {
    "customer_client.resource_name": "string",
    "customer_client.client_customer": "string",
    "customer_client.id": ID,
    "customer_client.descriptive_name": "string",
    "customer_client.currency_code": "string",
    "customer_client.time_zone": "string",
    "customer_client.status": "enum",
    "customer_client.manager": "bool",
    "customer_client.level": ID,
    "customer_client.test_account": "bool",
    "customer_client.hidden": "bool",
}
_CUSTOMER = {
    "customer.resource_name": "string",
    "customer.id": ID,
    "customer.descriptive_name": "string",
    "customer.currency_code": "string",
    "customer.time_zone": "string",
    "customer.manager": "bool",
    "customer.status": "enum",
    "customer.test_account": "bool",
}
_CAMPAIGN = {
    "campaign.resource_name": "string",
    "campaign.id": ID,
    "campaign.name": "string",
    "campaign.status": "enum",
    "campaign.advertising_channel_type": "enum",
    "campaign.bidding_strategy_type": "enum",
    "campaign_budget.amount_micros": ID,
}
_AD_GROUP = {
    "ad_group.resource_name": "string",
    "ad_group.id": ID,
    "ad_group.name": "string",
    "ad_group.status": "enum",
    "ad_group.type": "enum",
    "ad_group.campaign": "string",
    "ad_group.cpc_bid_micros": ID,
}
_AD = {
    "ad_group_ad.resource_name": "string",
    "ad_group_ad.status": "enum",
    "ad_group_ad.ad.id": ID,
    "ad_group_ad.ad.name": "string",
    "ad_group_ad.ad.type": "enum",
    "ad_group_ad.ad.final_urls": "string[]",
}
_ASSET = {
    "asset.resource_name": "string",
    "asset.id": ID,
    "asset.name": "string",
    "asset.type": "enum",
}
METRICS = {
    "segments.date": "date",
    "metrics.impressions": ID,
    "metrics.clicks": ID,
    "metrics.cost_micros": ID,
    "metrics.conversions": "double",
    "metrics.conversions_value": "double",
}
_ID_ONLY = {"customer.id": ID}
CATALOG: dict[str, dict[str, str]] = {
    "customer_client": _CUSTOMER_CLIENT,
    "customer": _CUSTOMER,
    "campaign": {**_CAMPAIGN, **_ID_ONLY, **METRICS},
    "ad_group": {
        **_AD_GROUP,
        **_ID_ONLY,
        "campaign.id": ID,
        "campaign.name": "string",
        "campaign.status": "enum",
        **METRICS,
    },
    "asset": {**_ASSET, **_ID_ONLY},
    "ad_group_ad": {
        **_AD,
        **_ID_ONLY,
        "campaign.id": ID,
        "ad_group.id": ID,
        "ad_group.name": "string",
        **METRICS,
    },
}
DATE_OPS = {"=", "BETWEEN", ">", ">=", "<", "<=", "IN"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def encode(value: Any, kind: str) -> Any:
    """A Python value as proto3 JSON writes it, or ``None`` when it is the default (omitted)."""
    if value is None or value == "" or value is False or value == []:
        return None
    if kind == ID:
        return None if value == 0 else str(int(value))
    if kind == "double":
        return None if value == 0 else value
    return value


def render_row(
    row: Row, fields: Sequence[str], catalog: dict[str, str], resource: str
) -> dict[str, Any]:
    """One GoogleAdsRow: the selected fields nested by path in camelCase (plus resourceName)."""
    out: dict[str, Any] = {}
    wanted = list(fields)
    own = f"{resource}.resource_name"
    if own in catalog and own not in wanted:
        wanted.append(own)
    for field in wanted:
        value = encode(row.get(field), catalog[field])
        if value is None:
            continue
        parts = [camel(p) for p in field.split(".")]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def field_mask(fields: Sequence[str]) -> str:
    return ",".join(".".join(camel(p) for p in f.split(".")) for f in fields)


class Selection(Sequence[Row]):
    """The rows a query selects, built on demand."""

    def __init__(self, count: int, get: Callable[[int], Row]) -> None:
        self._count = count
        self._get = get

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._get(i) for i in range(*index.indices(self._count))]
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._get(index)


def query_error(code: str, message: str) -> SandboxError:
    return SandboxError(400, f"queryError.{code}", message)


class Engine:
    """Answers GAQL queries over an :class:`Accounts`, with a small cache of results."""

    def __init__(self, accounts: Accounts, *, page_size: int = 10_000) -> None:
        self.accounts = accounts
        self.page_size = page_size
        self._cache: OrderedDict[tuple[int, str], Selection] = OrderedDict()

    # ------------------------------------------------------------------ queries
    def compile(self, text: str) -> Query:
        try:
            query = parse(text)
        except GaqlError as exc:
            raise query_error("UNEXPECTED_INPUT", exc.message) from None
        catalog = CATALOG.get(query.resource)
        if catalog is None:
            raise query_error(
                "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"the sandbox has no resource {query.resource}"
            )
        used = [
            *query.fields,
            *(c.field for c in query.where),
            *(o.split()[0] for o in query.order_by),
        ]
        for field in used:
            if field not in catalog:
                raise query_error(
                    "UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{field}'."
                )
        dated = any(f == "segments.date" or f.startswith("metrics.") for f in query.fields)
        if dated and not self._bounded(query.condition("segments.date")):
            raise query_error(
                "EXPECTED_FILTERS_ON_DATE_RANGE",
                "Filters on segments.date are required when segmenting or selecting metrics.",
            )
        return query

    @staticmethod
    def _bounded(conditions: list[Condition]) -> bool:
        ops = {c.op for c in conditions}
        lower, upper = ops & {">", ">="}, ops & {"<", "<="}
        return bool(ops & {"=", "BETWEEN", "IN"}) or bool(lower and upper)

    def select(self, cid: int, text: str) -> Selection:
        """Every row ``text`` selects on customer ``cid`` (cached for paging)."""
        key = (cid, text)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        selection = self._select(cid, self.compile(text))
        self._cache[key] = selection
        if len(self._cache) > 32:
            self._cache.popitem(last=False)
        return selection

    def _select(self, cid: int, query: Query) -> Selection:
        accounts = self.accounts
        resource = query.resource
        if resource == "customer_client":
            base: Sequence[Row] = accounts.customer_rows(cid)
        elif resource == "customer":
            base = [accounts.customer_row(cid)]
        elif accounts.customers[cid].manager:
            if any(f.startswith("metrics.") for f in query.fields):
                raise query_error(
                    "REQUESTED_METRICS_FOR_MANAGER", "Metrics cannot be requested for a manager."
                )
            base = []
        else:
            tables: dict[str, Callable[[int], Sequence[Row]]] = {
                "campaign": accounts.campaigns,
                "ad_group": accounts.ad_groups,
                "ad_group_ad": accounts.ads,
                "asset": accounts.assets,
            }
            base = tables[resource](cid)
        date_conditions = query.condition("segments.date")
        others = [c for c in query.where if c.field != "segments.date"]
        dated = any(f == "segments.date" or f.startswith("metrics.") for f in query.fields)
        rows: Sequence[Row]
        if dated:
            days = [
                d.isoformat()
                for d in accounts.days(cid)
                if all(c.matches(d.isoformat()) for c in date_conditions)
            ]
            for c in date_conditions:
                if c.op == "BETWEEN" and str(c.value[0]) > str(c.value[1]):  # type: ignore[index]
                    raise query_error(
                        "DATE_RANGE_TOO_NARROW", "The start date is after the end date."
                    )
            width = len(days)

            def dated_row(i: int) -> Row:
                entity, d = divmod(i, width)
                row = dict(base[entity])
                row["segments.date"] = days[d]
                row.update(accounts.metrics(cid, resource, entity, days[d]))
                return row

            rows = Selection(len(base) * width, dated_row)
        else:
            rows = base
        if others or query.order_by:
            kept = [r for r in rows if all(c.matches(r.get(c.field)) for c in others)]
            for item in reversed(query.order_by):
                name, direction = item.split()
                kept.sort(
                    key=lambda r: (r.get(name) is None, r.get(name)), reverse=direction == "DESC"
                )
            rows = kept
        count = len(rows) if query.limit is None else min(len(rows), query.limit)
        fields, catalog = query.fields, CATALOG[resource]
        source = rows
        return Selection(count, lambda i: render_row(source[i], fields, catalog, resource))

    # ------------------------------------------------------------------ paging
    def token(self, cid: int, text: str, offset: int, now: float) -> str:
        raw = json.dumps({"o": offset, "h": _digest(cid, text), "t": int(now)}).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def offset(self, cid: int, text: str, token: str, now: float) -> int:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset, digest, issued = int(data["o"]), str(data["h"]), float(data["t"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SandboxError(
                400, "requestError.INVALID_PAGE_TOKEN", "Page token is invalid."
            ) from None
        if digest != _digest(cid, text):
            raise SandboxError(
                400,
                "requestError.INVALID_PAGE_TOKEN",
                "The page token was issued for another query; send the identical query.",
            )
        if now - issued > TOKEN_TTL:
            raise SandboxError(400, "requestError.EXPIRED_PAGE_TOKEN", "Page token has expired.")
        return offset

    def page(self, cid: int, text: str, token: str | None, now: float) -> dict[str, Any]:
        """One ``googleAds:search`` answer."""
        selection = self.select(cid, text)
        start = 0 if not token else self.offset(cid, text, token, now)
        end = min(start + self.page_size, len(selection))
        body: dict[str, Any] = {
            "results": selection[start:end],
            "fieldMask": field_mask(parse(text).fields),
            "requestId": f"sbx-{_digest(cid, text)[:8]}-{start}",
        }
        if end < len(selection):
            body["nextPageToken"] = self.token(cid, text, end, now)
        return body

    def stream(self, cid: int, text: str) -> list[dict[str, Any]]:
        """One ``googleAds:searchStream`` answer: every row, in batches of 10,000."""
        selection = self.select(cid, text)
        mask = field_mask(parse(text).fields)
        batches = []
        for start in range(0, max(len(selection), 1), 10_000):
            batches.append(
                {
                    "results": selection[start : start + 10_000],
                    "fieldMask": mask,
                    "requestId": f"sbx-stream-{start}",
                }
            )
        return batches


def _digest(cid: int, text: str) -> str:
    return hashlib.sha256(f"{cid}\n{text}".encode()).hexdigest()[:16]
