"""uvicorn's httptools protocol with deadlines on the request head and body, and one write
per answer.

uvicorn closes a kept-alive connection that stays idle, but a connection that opens and
then sends its request line and headers slowly, or never finishes them, is held forever:
a few thousand of those (slowloris) take every file descriptor. Here every request head
must be complete within `head_timeout_s` of the connection opening or of the request's
first byte; otherwise the connection is closed. The body then has `body_timeout_s` from
the end of the head: a body still incomplete then gets 408 (OpenAI's error shape) and the
connection is closed, whichever route it was for and whether or not the app is reading
it (uvicorn itself waits for a missing body forever). The deadline costs nothing when the
body comes with the head: it is armed only when a read ends mid-body. The answer has the
upstream's deadlines.

uvicorn writes an answer's status line and headers as soon as the app starts the answer,
and its body separately: two `send` calls, where one would do. Each request's writes go
through a `HeldHead` that keeps the first write (the head) until the next one (the body,
or a stream's first chunk) and sends both together; a head with nothing after it leaves
at the end of the event loop's current pass. Measured side by side, 5-7% less gateway CPU
per small request (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from data_plane.gateway.errors import RequestTimeoutError

_SLOW_BODY = RequestTimeoutError("The request body was not received in time.").body()
SLOW_BODY_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(_SLOW_BODY), _SLOW_BODY)
)


class HeldHead:
    """One request's view of its connection's transport: the first write waits for the next.

    Order is kept: every write after a held one leaves with it, in one call. A close sends
    what is held first. Anything else is the transport's own (`__getattr__`).
    """

    __slots__ = ("_first", "_held", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is held, if anything (and the connection is still open)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadTimeoutProtocol(HttpToolsProtocol):
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _in_body = False
    """The head of a request is in, the end of its body not yet."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_body and self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_expired)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        before = self.cycle
        super().on_headers_complete()
        self._in_body = True
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # not an upgrade: a new request's cycle
            # Its task has not run yet: everything it writes goes through its own HeldHead.
            cycle.transport = HeldHead(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _body_expired(self) -> None:
        """The body is late: 408 unless the app answered already; the connection closes
        (the app's read of the body ends as a disconnect)."""
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(SLOW_BODY_RESPONSE)
        self.transport.close()


def head_timeout_protocol(
    timeout_s: float, body_timeout_s: float = 30.0
) -> type[HeadTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` setting, with these head and body deadlines."""
    attributes: dict[str, Any] = {"head_timeout_s": timeout_s, "body_timeout_s": body_timeout_s}
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), attributes)
