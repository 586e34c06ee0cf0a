"""`GET|POST /webhooks/{platform}`: handshakes and deliveries, answered by a
:class:`~cmis_core.webhooks.receive.Receiver` (see there for every status it answers).

The endpoint is plain ASGI: the body is read from ``receive`` as it arrives, so the size
limit and the slow-sender timeout apply while reading, not after. The service app sends
``/webhooks/{platform}`` straight to :meth:`WebhookEndpoint.serve`, past starlette's
routing and middleware (:class:`cmis_core.service.app.ServiceApp`); the starlette route
below serves the same endpoint when the app is mounted under a prefix.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Route

from cmis_core.contract import Receive, Scope, Send
from cmis_core.service.state import ServiceState
from cmis_core.webhooks.metrics import WebhookMetrics
from cmis_core.webhooks.receive import DUPLICATE, STORED, Answer, Receiver
from cmis_core.webhooks.writer import open_writer

RECEIVER = "webhooks.receiver"
METRICS = "webhooks.metrics"

INTERNAL_ERROR = Answer(status=500, body=b'{"error":"internal error"}')


def _raw_headers(answer: Answer) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", answer.media_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode("ascii")),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    return headers


_PREPARED = tuple((answer, _raw_headers(answer)) for answer in (STORED, DUPLICATE))


def _headers_of(answer: Answer) -> list[tuple[bytes, bytes]]:
    for known, headers in _PREPARED:  # the answers of nearly every request, encoded once
        if answer is known:
            return list(headers)
    return _raw_headers(answer)


async def _send(send: Send, answer: Answer) -> None:
    start = {"type": "http.response.start", "status": answer.status, "headers": _headers_of(answer)}
    await send(start)
    await send({"type": "http.response.body", "body": answer.body})


class WebhookEndpoint:
    """The ASGI endpoint of ``/webhooks/{platform}`` (every method reaches it)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params: dict[str, Any] = scope.get("path_params") or {}
        await self.serve(scope, receive, send, str(params.get("platform", "")))

    async def serve(self, scope: Scope, receive: Receive, send: Send, platform: str) -> int:
        """Answer one request for ``platform``; the status sent.

        An unexpected error is answered 500 (as starlette would) and raised again for the
        server's log; the receiver turns everything it expects into a 4xx or 503.
        """
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
        }
        query_string: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}
        try:
            answer = await self.receiver.receive(
                platform=platform,
                method=str(scope.get("method", "")),
                path=str(scope.get("path", "")),
                query=query,
                headers=headers,
                body=receive,
            )
        except Exception:
            await _send(send, INTERNAL_ERROR)
            raise
        await _send(send, answer)
        return answer.status


def receiver_of(state: ServiceState) -> Receiver:
    """The app's receiver, made on first need (its writer connects on the first delivery)."""
    receiver = state.shared.get(RECEIVER)
    if receiver is None:
        metrics = state.shared.setdefault(METRICS, WebhookMetrics())
        writer = open_writer(state.store)
        receiver = Receiver(
            settings=state.settings, registry=state.registry, writer=writer, metrics=metrics
        )
        state.shared[RECEIVER] = receiver
        state.on_shutdown.append(writer.close)
    assert isinstance(receiver, Receiver)
    return receiver


def routes(state: ServiceState) -> list[BaseRoute]:
    return [Route("/webhooks/{platform}", WebhookEndpoint(receiver_of(state)))]
