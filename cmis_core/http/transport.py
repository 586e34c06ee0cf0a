"""The request pipeline of one platform, as an httpx2 transport.

Each platform's client is a plain ``httpx2.AsyncClient`` whose transport is a
:class:`GovernedTransport`: governor, concurrency cap, the shared connection pool,
``classify`` and ``usage``, typed errors, and retries (tenacity) with back-off that honours
the platform's wait. Plugins keep calling ``ctx.http.get(...)`` as with any httpx2 client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx2
import structlog
import tenacity

from cmis_core.errors import (
    PlatformError,
    RateLimited,
    RetryLater,
    TokenRejected,
    Transient,
)
from cmis_core.http.retry import (
    default_classify,
    hinted_wait,
    is_retryable,
    parse_retry_after,
    wait_platform_or_backoff,
)
from cmis_core.http.scope import ACCOUNT, STREAM, current_scope
from cmis_core.redaction import redact_url

if TYPE_CHECKING:
    from cmis_core.http.config import HttpConfig
    from cmis_core.http.counters import Counters
    from cmis_core.http.governor import Governor
    from cmis_core.http.retry import Sleep
    from cmis_core.types import Platform, UsageReading

log = structlog.get_logger(__name__)

_NETWORK_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


async def _body(upstream: httpx2.Response) -> tuple[bytes, httpx2.Headers]:
    """The raw (still encoded) body and headers of a response from the pool."""
    if upstream.is_stream_consumed:  # already read (httpx2.MockTransport): decoded content
        headers = httpx2.Headers(upstream.headers)
        headers.pop("content-encoding", None)
        headers["content-length"] = str(len(upstream.content))
        return upstream.content, headers
    try:
        raw = b"".join([chunk async for chunk in upstream.aiter_raw()])
    finally:
        await upstream.aclose()
    return raw, upstream.headers


class _StreamedBody(httpx2.AsyncByteStream):
    """A streamed answer's body from the pool: network failures become Transient, the bytes
    are counted when it is closed."""

    def __init__(
        self, upstream: httpx2.Response, what: str, platform: str, counted: Callable[[int], None]
    ) -> None:
        self._upstream = upstream
        self._what = what
        self._platform = platform
        self._counted = counted
        self._received = 0
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._upstream.aiter_raw():
                self._received += len(chunk)
                yield chunk
        except _NETWORK_ERRORS as exc:
            raise Transient(
                f"{self._what}: {type(exc).__name__} while reading the answer",
                platform=self._platform,
            ) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._counted(self._received)
            await self._upstream.aclose()


class GovernedTransport(httpx2.AsyncBaseTransport):
    """Sends one platform's requests over the hub's pool, governed, classified and retried.

    Raises the :class:`~cmis_core.errors.PlatformError` the platform's ``classify`` returns
    (network failures become :class:`~cmis_core.errors.Transient`). Throttles and transient
    errors are retried up to ``max_attempts``; a wait longer than ``max_inline_wait`` raises
    :class:`~cmis_core.errors.RetryLater` instead. A rejected token is refreshed once through
    the scope's ``on_token_rejected``. Closing it leaves the shared pool open.

    A request with the :data:`~cmis_core.http.STREAM` extension gets a 2xx answer's body as
    it arrives (the concurrency slot is freed once the headers are in); error answers are
    read whole and classified as usual.
    """

    def __init__(
        self,
        *,
        platform: Platform,
        app: str,
        pool: httpx2.AsyncBaseTransport,
        governor: Governor,
        semaphore: asyncio.Semaphore,
        counters: Counters,
        config: HttpConfig,
        sleep: Sleep,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._platform = platform
        self._app = app
        self._pool = pool
        self._governor = governor
        self._semaphore = semaphore
        self._counters = counters
        self._config = config
        self._sleep = sleep
        self._loop = loop
        self._backoff = wait_platform_or_backoff(config.backoff_max)

    async def aclose(self) -> None:
        """Nothing to close: the hub owns the connection pool."""

    def _count(self, account: str | None, run: Counters | None, **figures: Any) -> None:
        self._counters.record(self._platform.name, account, **figures)
        if run is not None and run is not self._counters:
            run.record(self._platform.name, account, **figures)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                "this HTTP client belongs to another event loop; build an HttpHub per loop"
            )
        scope = current_scope()
        account = request.extensions.get(ACCOUNT) or scope.account
        name = self._platform.name
        url = redact_url(request.url)
        config = self._config

        def wait(state: tenacity.RetryCallState) -> float:
            seconds = self._backoff(state)
            error = state.outcome.exception() if state.outcome is not None else None
            hinted = error is not None and hinted_wait(error) is not None
            if hinted and seconds > config.max_inline_wait:
                log.warning("http.reschedule", platform=name, url=url, retry_after=seconds)
                raise RetryLater(
                    f"{name} asks to wait {seconds:.0f} s, longer than the "
                    f"{config.max_inline_wait:.0f} s waited inline; reschedule",
                    retry_after=seconds,
                    platform=name,
                    status=getattr(error, "status", None),
                ) from error
            return seconds

        async def sleep(seconds: float) -> None:
            self._count(account, scope.counters, retries=1, waited=seconds)
            await self._sleep(seconds)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.info(
                "http.retry",
                platform=name,
                method=request.method,
                url=url,
                attempt=state.attempt_number,
                wait=round(state.next_action.sleep if state.next_action else 0.0, 3),
                error=type(error).__name__,
            )

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(config.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        refreshed = False
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        return await self._send(request, account, scope.counters)
                    except TokenRejected:
                        if refreshed or scope.on_token_rejected is None:
                            raise
                        refreshed = True
                        log.info("http.token_refresh", platform=name, url=url)
                        renewed = await scope.on_token_rejected(request)
                        if renewed is None:
                            raise
                        request = renewed
                        return await self._send(request, account, scope.counters)
        except RateLimited as exc:
            if exc.retry_after is None:
                exc.retry_after = config.backoff_max
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _send(
        self, request: httpx2.Request, account: str | None, run: Counters | None
    ) -> httpx2.Response:
        """One attempt: governor, pool, classify. Raises the typed error of a failure."""
        platform, name = self._platform, self._platform.name
        waited = await self._governor.acquire(platform, self._app, account)
        fields: dict[str, Any] = {
            "platform": name,
            "account": account,
            "method": request.method,
            "url": redact_url(request.url),
        }
        streamed = bool(request.extensions.get(STREAM))
        async with self._semaphore:
            started = time.perf_counter()
            try:
                upstream = await self._pool.handle_async_request(request)
                if streamed and upstream.is_success and not upstream.is_stream_consumed:
                    return await self._streamed(upstream, request, account, run, waited, fields)
                raw, headers = await _body(upstream)
            except _NETWORK_ERRORS as exc:
                elapsed = time.perf_counter() - started
                self._count(account, run, calls=1, errors=1, waited=waited)
                log.info(
                    "http.request",
                    **fields,
                    elapsed_ms=round(elapsed * 1000, 1),
                    error=type(exc).__name__,
                )
                raise Transient(
                    f"{request.method} {fields['url']}: {type(exc).__name__}", platform=name
                ) from exc
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        status = upstream.status_code
        response = httpx2.Response(
            status,
            headers=headers,
            stream=httpx2.ByteStream(raw),
            request=request,
            extensions=upstream.extensions,
        )
        await response.aread()
        readings = self._readings(response)
        if readings:
            await self._governor.observe(platform, self._app, readings)
        error = (platform.classify or default_classify)(response)
        if error is None:
            self._count(account, run, calls=1, bytes_received=len(raw), waited=waited)
            log.debug("http.request", **fields, status=status, elapsed_ms=elapsed_ms)
            return httpx2.Response(
                status,
                headers=headers,
                stream=httpx2.ByteStream(raw),
                extensions=upstream.extensions,
            )
        await self._raise(error, response, account, run, raw, waited, fields, elapsed_ms)
        raise AssertionError("unreachable: _raise raises")

    async def _streamed(
        self,
        upstream: httpx2.Response,
        request: httpx2.Request,
        account: str | None,
        run: Counters | None,
        waited: float,
        fields: dict[str, Any],
    ) -> httpx2.Response:
        """A 2xx answer handed over unread: usage headers observed, the call counted, its
        bytes counted once the caller closes it."""
        response = httpx2.Response(
            upstream.status_code,
            headers=upstream.headers,
            stream=_StreamedBody(
                upstream,
                f"{request.method} {fields['url']}",
                self._platform.name,
                lambda received: self._count(account, run, bytes_received=received),
            ),
            extensions=upstream.extensions,
        )
        readings = self._readings(response)
        if readings:
            await self._governor.observe(self._platform, self._app, readings)
        self._count(account, run, calls=1, waited=waited)
        log.debug("http.request", **fields, status=upstream.status_code, streamed=True)
        return response

    def _readings(self, response: httpx2.Response) -> list[UsageReading]:
        """The platform's usage readings; a header it cannot read is logged, not fatal."""
        if self._platform.usage is None:
            return []
        try:
            return self._platform.usage(response)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("http.usage_unreadable", platform=self._platform.name, error=repr(exc))
            return []

    async def _raise(
        self,
        error: PlatformError,
        response: httpx2.Response,
        account: str | None,
        run: Counters | None,
        raw: bytes,
        waited: float,
        fields: dict[str, Any],
        elapsed_ms: float,
    ) -> None:
        status = response.status_code
        error.platform = error.platform or self._platform.name
        error.status = error.status or status
        if (
            isinstance(error, RateLimited | Transient)
            and hinted_wait(error) is None
            and status in (429, 503)
        ):
            error.retry_after = parse_retry_after(response.headers.get("retry-after"))
        throttled = isinstance(error, RateLimited)
        self._count(
            account,
            run,
            calls=1,
            throttled=int(throttled),
            errors=int(not throttled),
            bytes_received=len(raw),
            waited=waited,
        )
        log.info(
            "http.request",
            **fields,
            status=status,
            elapsed_ms=elapsed_ms,
            error=type(error).__name__,
            code=error.code,
        )
        if isinstance(error, RateLimited):
            log.warning(
                "http.throttled",
                platform=self._platform.name,
                account=account,
                status=status,
                retry_after=error.retry_after,
            )
            if error.retry_after:
                await self._governor.throttled(
                    self._platform.name, self._app, account, error.retry_after
                )
        raise error
