"""``FakePlatform``: the frame every sandbox is built in.

It owns the state a fake platform needs (issued tokens, rate-limit buckets, planned
faults, the call log, a movable clock) and turns it into a starlette app with three kinds
of route: the OAuth server's endpoints, the platform's API routes the sandbox author
declares with :meth:`FakePlatform.get` / :meth:`FakePlatform.route`, and the control API
under ``/_sandbox/`` that tests and the conformance kit drive.

An API route's handler receives a :class:`Call` once the access token has been checked
and the call charged to its rate-limit bucket; a refused token or an exhausted bucket is
answered in the platform's shape (its :class:`ApiStyle`) before the handler runs. Every
non-control request is logged, may be slowed down (``SandboxOptions.latency_ms``), and
may be answered by a planned :class:`Fault` instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cmis_core.contract import ASGIApp, Receive, SandboxOptions, Scope, Send
from cmis_core.testing.sandbox.calls import CallLog
from cmis_core.testing.sandbox.clock import Clock
from cmis_core.testing.sandbox.faults import Fault, FaultPlan
from cmis_core.testing.sandbox.limits import RateLimiter
from cmis_core.testing.sandbox.oauth import OAuthConfig, OAuthServer
from cmis_core.testing.sandbox.paging import InvalidCursor, InvalidParameter
from cmis_core.testing.sandbox.style import ApiStyle, Usage
from cmis_core.testing.sandbox.tokens import Grant, TokenProblem, TokenRefused, TokenStore
from cmis_core.testing.sandbox.webhooks import WebhookFaker

CONTROL_PREFIX = "/_sandbox"


class SandboxError(Exception):
    """Raise from a handler to answer with the platform's error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@attrs.frozen(kw_only=True)
class Call:
    """One authorised API call, as a route handler receives it."""

    request: Request
    fake: FakePlatform
    grant: Grant | None = None
    usage: Usage | None = None

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def path(self) -> Mapping[str, Any]:
        return self.request.path_params

    def json(
        self, data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        """A JSON answer (usage headers are added by the frame)."""
        return JSONResponse(data, status_code=status, headers=dict(headers or {}))

    def error(self, status: int, code: str, message: str) -> Response:
        """An error in the platform's envelope."""
        return self.fake.style.error(status, code, message)


Handler = Callable[[Call], Awaitable[Response]]
RateKey = Callable[[Request, Grant | None], str]


def app_key(request: Request, grant: Grant | None) -> str:
    """One bucket for the whole app (Meta's app-level limit)."""
    return "app"


def grant_key(request: Request, grant: Grant | None) -> str:
    """One bucket per user grant."""
    return f"grant:{grant.grant_id}" if grant else "anonymous"


class FakePlatform:
    """A fake platform's state and app. Declare routes, then call :meth:`app`.

    ``expected`` returns the ground truth ``/_sandbox/expected`` reports: how many records
    of each stream (by stream name) a complete read with empty sync state must return.
    ``rate`` and ``burst`` size the token bucket (``SandboxOptions.extra`` may override
    them as ``rate``/``burst``); ``rate_key`` says what a bucket is counted on.
    """

    def __init__(
        self,
        platform: str,
        *,
        options: SandboxOptions,
        oauth: OAuthConfig | None = None,
        style: ApiStyle | None = None,
        webhooks: WebhookFaker | None = None,
        expected: Callable[[], Mapping[str, int]] | None = None,
        rate: float = 20.0,
        burst: int = 100,
        rate_key: RateKey = app_key,
    ) -> None:
        self.platform = platform
        self.options = options
        self.style = style or ApiStyle()
        self.clock = Clock()
        self.tokens = TokenStore(clock=self.clock)
        self.oauth: OAuthServer | None = None
        if oauth is not None:
            if oauth.token_ttl is not None:
                oauth = attrs.evolve(oauth, token_ttl=options.token_ttl)
            self.oauth = OAuthServer(oauth, self.tokens)
        self.webhooks = webhooks
        self.expected = expected or dict
        self.limiter = RateLimiter(
            rate=float(options.extra.get("rate", rate)),
            burst=int(options.extra.get("burst", burst)),
            enabled=options.rate_limit,
            clock=self.clock,
        )
        self.rate_key = rate_key
        self.faults = FaultPlan()
        self.calls = CallLog()
        self._routes: list[BaseRoute] = []

    # ------------------------------------------------------------------ declaring routes
    def route(
        self,
        path: str,
        *,
        methods: Sequence[str] = ("GET",),
        auth: bool = True,
        cost: float = 1.0,
        rate_key: RateKey | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare an API route; the handler gets a :class:`Call` after token and rate checks."""

        def decorate(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                return await self._dispatch(request, handler, auth, cost, rate_key or self.rate_key)

            self._routes.append(Route(path, endpoint, methods=list(methods)))
            return handler

        return decorate

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, methods=("GET",), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, methods=("POST",), **kwargs)

    def add_route(self, route: BaseRoute) -> None:
        """A raw starlette route: no token check, no rate limit (a handshake endpoint...)."""
        self._routes.append(route)

    async def _dispatch(
        self, request: Request, handler: Handler, auth: bool, cost: float, rate_key: RateKey
    ) -> Response:
        grant = None
        if auth:
            try:
                grant = self.tokens.check(self.style.read_token(request))
            except TokenRefused as exc:
                self.calls.token_errors += 1
                return self.style.token_error(exc.problem)
        usage, wait = self.limiter.take(rate_key(request, grant), cost)
        if wait is not None:
            self.calls.throttled += 1
            return self.style.throttled(usage, wait)
        try:
            response = await handler(Call(request=request, fake=self, grant=grant, usage=usage))
        except InvalidCursor as exc:
            response = self.style.bad_request(str(exc), code="invalid_cursor")
        except InvalidParameter as exc:
            response = self.style.bad_request(str(exc))
        except SandboxError as exc:
            response = self.style.error(exc.status, exc.code, exc.message)
        if self.limiter.enabled:
            response.headers.update(self.style.usage_headers(usage))
        return response

    # ------------------------------------------------------------------ faults
    def fault_response(self, fault: Fault) -> Response:
        """What a fired fault answers, in the platform's shape."""
        if fault.kind == "throttle":
            self.calls.throttled += 1
            usage = Usage(
                key="fault",
                limit=self.limiter.burst,
                remaining=0,
                used=1.0,
                reset_after=fault.retry_after,
            )
            response = self.style.throttled(usage, fault.retry_after)
        elif fault.kind == "token_expired":
            response = self.style.token_error(TokenProblem.EXPIRED)
        elif fault.kind == "server_error":
            response = self.style.server_error(fault.status if fault.status >= 500 else 500)
        else:
            response = self.style.fault_body(fault.status, fault.body)
        response.headers.update(fault.headers)
        return response

    # ------------------------------------------------------------------ the app
    def app(self) -> ASGIApp:
        """The sandbox as an ASGI app (API, OAuth and control routes, instrumented)."""
        routes: list[BaseRoute] = []
        if self.oauth is not None:
            routes.extend(self.oauth.routes())
        routes.extend(self._routes)
        routes.extend(_control_routes(self))
        app = Starlette(routes=routes)
        app.state.fake = self
        return _Instrumented(app, self)


class _Instrumented:
    """ASGI middleware: call log, latency and fault injection for non-control requests."""

    def __init__(self, app: Starlette, fake: FakePlatform) -> None:
        self.app = app
        self.fake = fake
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        fake = self.fake
        method, path = scope["method"], scope["path"]
        fake.calls.record(method, path)

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                fake.calls.statuses[message["status"]] += 1
            await send(message)

        fake.calls.started()
        try:
            if fake.options.latency_ms:
                await asyncio.sleep(fake.options.latency_ms / 1000)
            fault = fake.faults.take(method, path)
            if fault is not None:
                fake.calls.faults += 1
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                if fault.kind != "delay":
                    await fake.fault_response(fault)(scope, receive, counted)
                    return
            await self.app(scope, receive, counted)
        finally:
            fake.calls.finished()


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _control_routes(fake: FakePlatform) -> list[BaseRoute]:
    """The ``/_sandbox/`` control API (documented in docs/writing-a-plugin.md)."""

    async def index(request: Request) -> Response:
        paths = sorted({r.path for r in routes if isinstance(r, Route)})
        return JSONResponse({"platform": fake.platform, "control": paths})

    async def expected(request: Request) -> Response:
        return JSONResponse({"platform": fake.platform, "streams": dict(fake.expected())})

    async def stats(request: Request) -> Response:
        data = fake.calls.to_json()
        data["faults_pending"] = fake.faults.pending()
        data["live_grants"] = fake.tokens.live_grants()
        if fake.limiter.enabled:
            data["rate_limits"] = fake.limiter.budget()
        return JSONResponse(data)

    async def stats_reset(request: Request) -> Response:
        fake.calls.reset()
        return JSONResponse({"ok": True})

    async def expire(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"expired": fake.tokens.expire(body.get("access_token"))})

    async def revoke(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"revoked": fake.tokens.revoke(body.get("token"))})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            fake.faults.clear()
            return JSONResponse({"pending": 0})
        body = json.loads(await request.body() or b"{}")
        try:
            for item in body if isinstance(body, list) else [body]:
                fake.faults.add(Fault.from_json(item))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"pending": fake.faults.pending()})

    async def deny(request: Request) -> Response:
        if fake.oauth is None:
            return JSONResponse({"error": "this sandbox has no OAuth server"}, status_code=404)
        body = await _body(request)
        fake.oauth.deny_next(int(body.get("count", 1)))
        return JSONResponse({"ok": True})

    async def advance(request: Request) -> Response:
        body = await _body(request)
        try:
            fake.clock.advance(float(body.get("seconds", 0)))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"now": fake.clock.now()})

    async def sample(request: Request) -> Response:
        if fake.webhooks is None:
            return JSONResponse({"error": "this sandbox sends no webhooks"}, status_code=404)
        body = await _body(request)
        signature = body.get("signature", "valid")
        if signature not in ("valid", "wrong", "none"):
            return JSONResponse(
                {"error": "signature must be valid, wrong or none"}, status_code=400
            )
        delivery = fake.webhooks.delivery(
            signature=signature,
            timestamp_offset=float(body.get("timestamp_offset", 0)),
            now=fake.clock.now(),
        )
        data = delivery.to_json()
        data["timestamped"] = fake.webhooks.timestamped
        return JSONResponse(data)

    async def handshake(request: Request) -> Response:
        shake = fake.webhooks.handshake() if fake.webhooks is not None else None
        if shake is None:
            return JSONResponse(
                {"error": "this platform has no webhook handshake"}, status_code=404
            )
        return JSONResponse(shake.to_json())

    p = CONTROL_PREFIX
    routes: list[BaseRoute] = [
        Route(f"{p}/", index, methods=["GET"]),
        Route(f"{p}/expected", expected, methods=["GET"]),
        Route(f"{p}/stats", stats, methods=["GET"]),
        Route(f"{p}/stats/reset", stats_reset, methods=["POST"]),
        Route(f"{p}/tokens/expire", expire, methods=["POST"]),
        Route(f"{p}/tokens/revoke", revoke, methods=["POST"]),
        Route(f"{p}/faults", faults, methods=["POST", "DELETE"]),
        Route(f"{p}/authorize/deny", deny, methods=["POST"]),
        Route(f"{p}/clock/advance", advance, methods=["POST"]),
        Route(f"{p}/webhooks/sample", sample, methods=["POST"]),
        Route(f"{p}/webhooks/handshake", handshake, methods=["GET"]),
    ]
    return routes
