"""The fake Graph API's routes: nodes, edges, insights (sync and async report runs), leads.

Built to Meta's documented behaviour: ``/{version}/...`` paths; ``fields`` selection;
cursor paging (``limit``, ``after``; ``paging.next`` only while more remain); ``filtering``
(``[{"field", "operator", "value"}]``) on ``<level>.effective_status`` (IN) and
``<level>.updated_time`` (GREATER_THAN, unix seconds), ``time_created`` on leads and
``campaign.id``/``adset.id``/``ad.id`` (IN) on insights; archived and deleted objects
left out of listings and insights unless asked for; ``appsecret_proof`` checked when sent
(and required with ``SandboxOptions.extra["require_proof"]``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cmis_core.testing.sandbox import (
    Call,
    FakePlatform,
    LazyTable,
    SandboxError,
    cursor_page,
    cursor_paging,
    read_int,
    select_fields,
)
from cmis_core.testing.sandbox.tokens import TokenRefused
from cmis_meta.sandbox.data import MetaData, graph_time, make_id, parse_id
from cmis_meta.sandbox.oauth import DATA_ACCESS_TTL, MetaOAuthServer

ENTITY_LIMIT = 5000
INSIGHTS_LIMIT = 5000
LEVEL_PREFIX = {"campaigns": "campaign", "adsets": "adset", "ads": "ad"}
INSIGHT_FIELDS_ALWAYS = ("date_start", "date_stop")
TOO_MUCH = "Please reduce the amount of data you're asking for, then retry your request"
STATUS_ORDER = ["Job Not Started", "Job Started", "Job Running", "Job Completed"]


@attrs.define
class Limits:
    """Knobs tests turn through ``POST /_sandbox/meta/limits``."""

    job_polls: int = 2  # polls before a report run completes
    job_max_rows: int = 250_000  # a report run over this fails with 100/1487534
    sync_max_rows: int = 50_000  # a synchronous /insights over this answers 100/1487534
    require_proof: bool = False


@attrs.define
class ReportRun:
    run_id: str
    account: int
    rows: Sequence[dict[str, Any]]
    date_start: str
    date_stop: str
    polls: int = 0
    failed: bool = False
    finished: bool = False  # its status has said completed or failed


def missing(object_id: str) -> str:
    """Graph's words for an id it cannot read (code 100, subcode 33)."""
    return (
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation."
    )


def _json_param(params: Mapping[str, str], name: str) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise SandboxError(400, "100", f"(#100) {name} must be valid JSON") from None


@attrs.frozen
class Filters:
    statuses: frozenset[str] | None = None
    updated_after: int | None = None
    created_after: int | None = None
    ids: Mapping[str, frozenset[str]] = attrs.field(factory=dict)


def read_filters(params: Mapping[str, str]) -> Filters:
    """``filtering`` (and the ``effective_status`` shortcut) as the sandbox understands it."""
    statuses = _json_param(params, "effective_status")
    updated = created = None
    ids: dict[str, frozenset[str]] = {}
    for rule in _json_param(params, "filtering") or []:
        try:
            field, operator, value = rule["field"], rule["operator"], rule["value"]
        except (KeyError, TypeError):
            raise SandboxError(
                400, "100", "(#100) filtering rules need field, operator and value"
            ) from None
        name = field.split(".")[-1]
        if name == "effective_status" and operator == "IN":
            statuses = value
        elif name == "updated_time" and operator in ("GREATER_THAN", "GREATER_THAN_OR_EQUAL"):
            updated = int(value) - (1 if operator == "GREATER_THAN_OR_EQUAL" else 0)
        elif name == "time_created" and operator in ("GREATER_THAN", "GREATER_THAN_OR_EQUAL"):
            created = int(value) - (1 if operator == "GREATER_THAN_OR_EQUAL" else 0)
        elif name == "id" and operator == "IN" and "." in field:
            ids[field.split(".")[0]] = frozenset(map(str, value))
        else:
            raise SandboxError(
                400,
                "100",
                f"(#100) Filtering field {field} with operation {operator} is not supported",
            )
    return Filters(
        statuses=frozenset(statuses) if statuses else None,
        updated_after=updated,
        created_after=created,
        ids=ids,
    )


def _epoch(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp())


def wanted_fields(fields: str | None) -> str | None:
    """``fields`` with nested selections (``creative{id}``) reduced to their top-level name."""
    return re.sub(r"\{[^}]*\}", "", fields) if fields else fields


def listing(
    call: Call, items: Sequence[dict[str, Any]], scope: str, *, limit_max: int = ENTITY_LIMIT
) -> Response:
    limit = read_int(call.request, "limit", default=25, maximum=limit_max)
    page = cursor_page(items, after=call.query.get("after"), limit=limit, scope=scope)
    fields = wanted_fields(call.query.get("fields"))
    return call.json(
        {
            "data": [select_fields(r, fields) for r in page.items],
            "paging": cursor_paging(page, call.request, scope=scope),
        }
    )


def install(
    fake: FakePlatform, data: MetaData, *, client_id: str, client_secret: str, limits: Limits
) -> None:
    """Declare every Graph route on ``fake``."""
    runs: dict[str, ReportRun] = {}
    jobs = {"running": 0, "max_running": 0}  # report runs started and not yet finished
    run_ids = itertools.count(9_000_000_000_001)
    subscriptions: dict[str, dict[str, Any]] = {}
    subscribed: set[str] = set()
    oauth = fake.oauth
    assert isinstance(oauth, MetaOAuthServer)

    def account(call: Call) -> int:
        node = call.path["node"]
        index = data.account_index(node)
        if index is None:
            raise SandboxError(
                400,
                "100/33",
                missing(node),
            )
        return index

    def check_proof(call: Call) -> None:
        token = fake.style.read_token(call.request) or ""
        proof = call.query.get("appsecret_proof")
        if proof is None:
            if limits.require_proof:
                raise SandboxError(
                    400, "100", "API calls from the server require an appsecret_proof argument"
                )
            return
        expected = hmac.new(client_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(proof, expected):
            raise SandboxError(400, "100", "Invalid appsecret_proof provided in the API argument")

    def is_app_token(call: Call) -> bool:
        token = fake.style.read_token(call.request) or ""
        return hmac.compare_digest(token.encode(), f"{client_id}|{client_secret}".encode())

    # ------------------------------------------------------------------ entity edges
    def entities(call: Call, kind: str) -> Response:
        a = account(call)
        table = {"campaigns": data.campaigns, "adsets": data.adsets, "ads": data.ads}[kind](a)
        filters = read_filters(call.query)
        positions = data.visible(table, filters.statuses)
        if filters.updated_after is not None:
            positions = [
                i for i in positions if _epoch(table[i]["updated_time"]) > filters.updated_after
            ]
        items = LazyTable(len(positions), lambda i: table[positions[i]])
        key = f"{kind}:{a}:{sorted(filters.statuses or [])}:{filters.updated_after}"
        return listing(call, items, key)

    # ------------------------------------------------------------------ insights
    def insight_rows(
        call: Call, a: int, params: Mapping[str, str]
    ) -> tuple[Sequence[dict[str, Any]], str, str]:
        level = params.get("level", "ad")
        if level not in ("ad", "account"):
            raise SandboxError(400, "100", "(#100) the sandbox offers level=ad and level=account")
        if str(params.get("time_increment", "1")) != "1":
            raise SandboxError(400, "100", "(#100) the sandbox offers time_increment=1 only")
        try:
            time_range = json.loads(params["time_range"])
            since = dt.date.fromisoformat(time_range["since"])
            until = dt.date.fromisoformat(time_range["until"])
        except (KeyError, ValueError, TypeError):
            raise SandboxError(
                400, "100", "(#100) time_range must be {'since':'YYYY-MM-DD','until':'YYYY-MM-DD'}"
            ) from None
        if until < since:
            raise SandboxError(400, "100", "(#100) time_range: since must not be after until")
        days = [d for d in data.days(a) if since <= d <= until]
        windows = params.get("action_attribution_windows")
        wanted = set(json.loads(windows)) if windows else None
        fields = params.get("fields")

        def shape(row: dict[str, Any]) -> dict[str, Any]:
            if wanted is not None:
                for key in ("actions", "action_values"):
                    row[key] = [
                        {
                            k: v
                            for k, v in item.items()
                            if k in ("action_type", "value") or k in wanted
                        }
                        for item in row[key]
                    ]
            return select_fields(row, fields, always=INSIGHT_FIELDS_ALWAYS)

        if level == "account":
            rows: Sequence[dict[str, Any]] = LazyTable(
                len(days), lambda i: shape(data.account_insight(a, days[i]))
            )
            return rows, since.isoformat(), until.isoformat()
        filters = read_filters(params)
        ads = data.ads(a)
        positions = data.visible(ads, filters.statuses)
        for prefix, ids in filters.ids.items():
            field = {"campaign": "campaign_id", "adset": "adset_id", "ad": "id"}[prefix]
            positions = [i for i in positions if ads[i][field] in ids]
        n = len(days)
        rows = LazyTable(
            len(positions) * n, lambda i: shape(data.insight(a, positions[i // n], days[i % n]))
        )
        return rows, since.isoformat(), until.isoformat()

    def insights_get(call: Call) -> Response:
        a = account(call)
        rows, _, _ = insight_rows(call, a, call.query)
        if len(rows) > limits.sync_max_rows:
            raise SandboxError(
                400,
                "100/1487534",
                TOO_MUCH,
            )
        q = call.query
        scope = f"insights:{a}:{q.get('time_range')}:{q.get('filtering')}:{q.get('level')}"
        return listing(call, rows, scope, limit_max=INSIGHTS_LIMIT)

    async def insights_post(call: Call) -> Response:
        a = account(call)
        form = dict(call.query)
        body = await call.request.body()
        if body:
            form.update(parse_qsl(body.decode()))
        rows, since, until = insight_rows(call, a, form)
        run_id = str(next(run_ids))
        runs[run_id] = ReportRun(
            run_id, a, rows, since, until, failed=len(rows) > limits.job_max_rows
        )
        jobs["running"] += 1
        jobs["max_running"] = max(jobs["max_running"], jobs["running"])
        return call.json({"report_run_id": run_id})

    def run_status(call: Call, run: ReportRun) -> Response:
        run.polls += 1
        done = run.polls >= limits.job_polls
        if done and not run.finished:
            run.finished = True
            jobs["running"] -= 1
        body: dict[str, Any] = {
            "id": run.run_id,
            "account_id": data.accounts[run.account]["account_id"],
            "time_ref": int(fake.clock.now()),
            "date_start": run.date_start,
            "date_stop": run.date_stop,
            "is_running": not done,
        }
        if run.failed and done:
            body.update(
                async_status="Job Failed",
                async_percent_completion=min(99, 100 * run.polls // max(1, limits.job_polls)),
                error_code=100,
                error_subcode=1487534,
                error_message=TOO_MUCH,
                error_user_title="Too much data",
                error_user_msg="Reduce the date range or the number of objects.",
            )
        elif done:
            body.update(
                async_status="Job Completed",
                async_percent_completion=100,
                time_completed=int(fake.clock.now()),
            )
        else:
            step = STATUS_ORDER[min(run.polls, 2)]
            body.update(
                async_status=step, async_percent_completion=100 * run.polls // limits.job_polls
            )
        return call.json(select_fields(body, call.query.get("fields")))

    def run_insights(call: Call, run: ReportRun) -> Response:
        if run.polls < limits.job_polls or run.failed:
            raise SandboxError(400, "100", "(#100) the report run is not completed")
        return listing(call, run.rows, f"run:{run.run_id}", limit_max=INSIGHTS_LIMIT)

    # ------------------------------------------------------------------ nodes
    def node(call: Call) -> Response:
        object_id = call.path["node"]
        fields = wanted_fields(call.query.get("fields"))
        if object_id in runs:
            return run_status(call, runs[object_id])
        if object_id == "me":
            assert call.grant is not None
            return call.json(
                select_fields({"id": call.grant.user_id, "name": "Sandbox User"}, fields)
            )
        a = data.account_index(object_id)
        if a is not None:
            return call.json(select_fields(data.accounts[a], fields))
        record = lookup(object_id)
        if record is None:
            raise SandboxError(
                400,
                "100/33",
                missing(object_id),
            )
        return call.json(select_fields(record, fields))

    def lookup(object_id: str) -> dict[str, Any] | None:
        parsed = parse_id(object_id)
        if parsed is None:
            return None
        kind, a, i = parsed
        if a >= data.size.accounts:
            return None
        tables: dict[str, Callable[[int], Any]] = {
            "campaign": data.campaigns,
            "adset": data.adsets,
            "ad": data.ads,
            "creative": data.creatives,
        }
        if kind in tables:
            table = tables[kind](a)
            return table[i] if i < len(table) else None
        if kind == "lead":
            return data.lead(a, i) if i < data.size.forms * data.size.leads else None
        if kind == "page":
            return data.page(a) if i == 0 else None
        if kind == "form":
            forms = data.forms(a)
            return forms[i] if i < len(forms) else None
        return None

    def ids_lookup(call: Call) -> Response:
        wanted = [i for i in (call.query.get("ids") or "").split(",") if i]
        if not wanted:
            raise SandboxError(400, "100", "(#100) Must specify ids")
        out: dict[str, Any] = {}
        for object_id in wanted:
            record = lookup(object_id)
            if record is None:
                raise SandboxError(
                    400,
                    "100/33",
                    f"Unsupported get request. Object with ID '{object_id}' does not exist",
                )
            out[object_id] = select_fields(record, wanted_fields(call.query.get("fields")))
        return call.json(out)

    # ------------------------------------------------------------------ routes
    def charge_key(request: Request, grant: Any) -> str:
        parts = request.url.path.strip("/").split("/")
        node_id = parts[1] if len(parts) > 1 else ""
        run = runs.get(node_id)
        a = run.account if run else data.account_index(node_id)
        if a is None:
            parsed = parse_id(node_id)
            a = parsed[1] if parsed else None
        if a is None:
            return "app"
        kind = (
            "ads_insights"
            if (run or (len(parts) > 2 and parts[2] == "insights"))
            else "ads_management"
        )
        return f"account:{data.accounts[a]['account_id']}:{kind}"

    @fake.get("/{version:graph_version}/debug_token", auth=False)
    async def debug_token(call: Call) -> Response:
        if not is_app_token(call):
            raise SandboxError(
                400, "190", "Invalid OAuth access token - debug_token needs an app token"
            )
        token = call.query.get("input_token", "")
        record = fake.tokens.access.get(token)
        if record is None:
            return call.json(
                {
                    "data": {
                        "is_valid": False,
                        "error": {"code": 190, "message": "Invalid OAuth access token"},
                    }
                }
            )
        grant = fake.tokens.grants[record.grant_id]
        try:
            fake.tokens.check(token)
            valid, error = True, None
        except TokenRefused as exc:
            valid = False
            error = {
                "code": 190,
                "subcode": 463 if exc.problem == "expired" else 458,
                "message": f"token {exc.problem}",
            }
        now = int(fake.clock.now())
        info: dict[str, Any] = {
            "app_id": client_id,
            "type": "SYSTEM_USER" if grant.user_id.startswith("system") else "USER",
            "application": "cmis sandbox",
            "expires_at": int(record.expires_at) if record.expires_at else 0,
            "data_access_expires_at": 0
            if grant.user_id.startswith("system")
            else now + DATA_ACCESS_TTL,
            "is_valid": valid,
            "issued_at": now,
            "scopes": list(grant.scopes),
            "user_id": grant.user_id,
        }
        if error:
            info["error"] = error
        return call.json({"data": info})

    @fake.route(
        "/{version:graph_version}/{node}/subscriptions", methods=("GET", "POST"), auth=False
    )
    async def app_subscriptions(call: Call) -> Response:
        if not is_app_token(call) or call.path["node"] != client_id:
            raise SandboxError(400, "190", "(#190) app subscriptions need the app access token")
        if call.request.method == "GET":
            return call.json({"data": list(subscriptions.values())})
        form = dict(call.query)
        body = await call.request.body()
        if body:
            form.update(parse_qsl(body.decode()))
        for name in ("object", "callback_url", "verify_token"):
            if not form.get(name):
                raise SandboxError(400, "100", f"(#100) param {name} is required")
        subscriptions[form["object"]] = {
            "object": form["object"],
            "callback_url": form["callback_url"],
            "active": True,
            "fields": [
                {"name": f, "version": call.path["version"]}
                for f in (form.get("fields") or "").split(",")
                if f
            ],
        }
        return call.json({"success": True})

    @fake.route("/{version:graph_version}/", methods=("GET",))
    async def root(call: Call) -> Response:
        check_proof(call)
        return ids_lookup(call)

    @fake.route("/{version:graph_version}/{node}", methods=("GET",), rate_key=charge_key)
    async def get_node(call: Call) -> Response:
        check_proof(call)
        return node(call)

    @fake.route(
        "/{version:graph_version}/{node}/{edge}",
        methods=("GET", "POST", "DELETE"),
        rate_key=charge_key,
    )
    async def edge(call: Call) -> Response:
        check_proof(call)
        node_id, name, method = call.path["node"], call.path["edge"], call.request.method
        if node_id == "me":
            assert call.grant is not None
            if name == "adaccounts" and method == "GET":
                return listing(call, data.accounts, "adaccounts")
            if name == "accounts" and method == "GET":
                pages = [
                    {
                        **data.page(a),
                        "access_token": fake.tokens.issue_access(call.grant, None),
                        "tasks": ["ADVERTISE", "MANAGE"],
                    }
                    for a in range(data.size.accounts)
                ]
                return listing(call, pages, "pages")
            if name == "permissions" and method == "DELETE":
                fake.tokens.revoke_grant(call.grant.grant_id)
                return call.json({"success": True})
            if name == "permissions" and method == "GET":
                return call.json(
                    {"data": [{"permission": s, "status": "granted"} for s in call.grant.scopes]}
                )
        if node_id in runs and name == "insights" and method == "GET":
            return run_insights(call, runs[node_id])
        if node_id.startswith("act_"):
            if name in ("campaigns", "adsets", "ads") and method == "GET":
                return entities(call, name)
            if name == "adcreatives" and method == "GET":
                return listing(call, data.creatives(account(call)), f"creatives:{account(call)}")
            if name == "insights" and method == "GET":
                return insights_get(call)
            if name == "insights" and method == "POST":
                return await insights_post(call)
            if name == "promote_pages" and method == "GET":
                return listing(call, [data.page(account(call))], f"promote:{account(call)}")
            if name == "subscribed_apps" and method == "POST":
                subscribed.add(node_id)
                return call.json({"success": True})
        parsed = parse_id(node_id)
        if parsed is not None and parsed[1] < data.size.accounts:
            kind, a, i = parsed
            if kind == "page" and name == "leadgen_forms" and method == "GET":
                return listing(call, data.forms(a), f"forms:{a}")
            if kind == "page" and name == "subscribed_apps" and method == "POST":
                if call.query.get("subscribed_fields") is None and not await call.request.body():
                    raise SandboxError(400, "100", "(#100) subscribed_fields is required")
                subscribed.add(node_id)
                return call.json({"success": True})
            if kind == "form" and name == "leads" and method == "GET" and i < data.size.forms:
                filters = read_filters(call.query)
                leads = data.leads_of_form(a, i)
                if filters.created_after is not None:
                    leads = [x for x in leads if _epoch(x["created_time"]) > filters.created_after]
                return listing(call, leads, f"leads:{a}:{i}:{filters.created_after}")
        raise SandboxError(400, "100", f"(#100) Unknown path components: /{name}")

    fake.subscriptions = subscriptions  # type: ignore[attr-defined]
    fake.subscribed = subscribed  # type: ignore[attr-defined]
    fake.runs = runs  # type: ignore[attr-defined]
    fake.jobs = jobs  # type: ignore[attr-defined]


def control_routes(fake: FakePlatform, data: MetaData, limits: Limits) -> list[Any]:
    """``/_sandbox/meta/*``: knobs beyond the toolkit's control API."""
    from starlette.routing import Route

    async def set_limits(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        for name, value in body.items():
            if not hasattr(limits, name):
                return JSONResponse({"error": f"unknown limit {name}"}, status_code=400)
            setattr(limits, name, type(getattr(limits, name))(value))
        return JSONResponse(attrs.asdict(limits))

    async def touch(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        ids = data.touch(str(body.get("kind", "ads")), int(body.get("count", 1)))
        return JSONResponse({"touched": ids})

    async def system_user_token(request: Request) -> Response:
        grant = fake.tokens.new_grant(
            client_id="sandbox",
            user_id="system_user_1",
            scopes=("ads_read", "ads_management", "leads_retrieval"),
        )
        return JSONResponse({"access_token": fake.tokens.issue_access(grant, None)})

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "report_runs": len(fake.runs),  # type: ignore[attr-defined]
                "max_running_report_runs": fake.jobs["max_running"],  # type: ignore[attr-defined]
                "subscriptions": fake.subscriptions,  # type: ignore[attr-defined]
                "subscribed": sorted(fake.subscribed),  # type: ignore[attr-defined]
            }
        )

    return [
        Route("/_sandbox/meta/limits", set_limits, methods=["POST"]),
        Route("/_sandbox/meta/touch", touch, methods=["POST"]),
        Route("/_sandbox/meta/system_user_token", system_user_token, methods=["POST"]),
        Route("/_sandbox/meta/stats", stats, methods=["GET"]),
    ]


def lead_sample(data: MetaData, n: int) -> dict[str, Any]:
    """A ``leadgen`` delivery for an existing lead, as Meta posts it to the callback URL."""
    a = n % data.size.accounts
    index = (n // data.size.accounts) % (data.size.forms * data.size.leads)
    lead = data.lead(a, index)
    page_id = data.page(a)["id"]
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": now,
                "changes": [
                    {
                        "field": "leadgen",
                        "value": {
                            "ad_id": lead["ad_id"],
                            "form_id": lead["form_id"],
                            "leadgen_id": lead["id"],
                            "created_time": _epoch(lead["created_time"]),
                            "page_id": page_id,
                            "adgroup_id": lead["ad_id"],
                        },
                    }
                ],
            }
        ],
    }


def ad_account_sample(data: MetaData, n: int) -> dict[str, Any]:
    """An ``ad_account`` delivery (``with_issues_ad_objects`` / ``in_process_ad_objects``)."""
    a = n % data.size.accounts
    ads = data.ads(a)
    ad = ads[n % len(ads)]
    field = "with_issues_ad_objects" if n % 4 == 0 else "in_process_ad_objects"
    value: dict[str, Any] = {"id": ad["id"], "level": "AD"}
    if field == "with_issues_ad_objects":
        value.update(
            error_code=1487890, error_summary="Ad rejected", error_message="The ad was rejected"
        )
    else:
        value["status_name"] = "ACTIVE"
    return {
        "object": "ad_account",
        "entry": [
            {
                "id": data.accounts[a]["account_id"],
                "time": int(dt.datetime.now(dt.UTC).timestamp()),
                "changes": [{"field": field, "value": value}],
            }
        ],
    }


__all__ = [
    "Limits",
    "ad_account_sample",
    "control_routes",
    "graph_time",
    "install",
    "lead_sample",
    "make_id",
]
