"""`GET|POST /webhooks/{platform}`: handshakes and deliveries, answered by a
:class:`~cmis_core.webhooks.receive.Receiver` (see there for every status it answers).

The endpoint is plain ASGI: the body is read chunk by chunk from ``receive`` so the size
limit and the slow-sender timeout apply while reading, not after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Route

from cmis_core.contract import Receive, Scope, Send
from cmis_core.errors import WebhookRejected
from cmis_core.service.state import ServiceState
from cmis_core.webhooks.metrics import WebhookMetrics
from cmis_core.webhooks.receive import Answer, Receiver
from cmis_core.webhooks.writer import open_writer

RECEIVER = "webhooks.receiver"
METRICS = "webhooks.metrics"


def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise WebhookRejected("the sender went away", status=400, reason="client_gone")
            yield bytes(message.get("body", b""))
            if not message.get("more_body", False):
                return

    return gen()


async def _send(send: Send, answer: Answer) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", answer.media_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode("ascii")),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class WebhookEndpoint:
    """The ASGI endpoint of ``/webhooks/{platform}`` (every method reaches it)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        params: dict[str, Any] = scope.get("path_params") or {}
        answer = await self.receiver.receive(
            platform=str(params.get("platform", "")),
            method=str(scope.get("method", "")),
            path=str(scope.get("path", "")),
            query=query,
            headers=headers,
            body=_chunks(receive),
        )
        await _send(send, answer)


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
