"""uvicorn's httptools protocol with each response sent in one write.

uvicorn writes the status line and headers when the app sends ``http.response.start``
and the body when it sends ``http.response.body``: two ``send(2)`` calls per answer, and
the client is woken twice (it reads the head, goes back to ``epoll``, reads the body). On
a small machine those wake-ups cost more than the rest of a webhook answer. Here the
transport gathers what is written during one turn of the event loop and writes it at the
end of that turn (``loop.call_soon``): head and body leave together, in order; nothing
waits longer than the current turn, and closing the connection writes what is gathered
first. Flow control is the real transport's (pause/resume writing reach the protocol as
before).

``cmis serve`` uses :class:`CorkedHttpToolsProtocol` (``uvicorn.Config(http=...)``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CorkedTransport:
    """A transport that writes what one loop turn gathered in a single call."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Write what was gathered (a no-op once the connection is closing)."""
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(p) for p in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        corked = CorkedTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(corked)  # type: ignore[arg-type]
