"""uvicorn's httptools protocol with deadlines on the request head and body, and one write
per answer.

uvicorn closes a kept-alive connection that stays idle, but a connection that opens and
then sends its request line and headers slowly, or never finishes them, is held forever:
a few thousand of those (slowloris) take every file descriptor. Here every request head
must be complete within `head_timeout_s` of the connection opening or of the request's
first byte; otherwise the connection is closed. An idle kept-alive connection is closed
after uvicorn's `timeout_keep_alive`. Both are judged by one tick per connection, every
quarter of the shorter of the two (so a deadline is met at most that late), rather than a
timer armed and cancelled per request. The body then has `body_timeout_s` from
the end of the head: a body still incomplete then gets 408 (OpenAI's error shape) and the
connection is closed, whichever route it was for and whether or not the app is reading
it (uvicorn itself waits for a missing body forever). The deadline costs nothing when the
body comes with the head: it is armed only when a read ends mid-body. The answer has the
upstream's deadlines.

httptools buffers a request head whole, however long it grows: here a head over
`max_head_bytes` (counted per read, so at most one read past the bound is buffered) gets
431 and the connection is closed.

uvicorn writes an answer's status line and headers as soon as the app starts the answer,
and its body separately: two `send` calls, where one would do. Each request's writes go
through a `HeldHead` that keeps the first write (the head) until the next one (the body,
or a stream's first chunk) and sends both together; a head with nothing after it leaves
at the end of the event loop's current pass. Measured side by side, 5-7% less gateway CPU
per small request (docs/benchmarks.md).

A `POST` to one of the proxy `routes` skips uvicorn's ASGI cycle: the request gets a
`ProxyCycle` (proxy/cycle.py) that its handler reads the body from and writes the answer
to directly, and that hears of a disconnect from here. Every other request (and a proxy
path written with percent-escapes) goes to the ASGI app as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from data_plane.gateway.errors import GatewayError, HeaderTooLargeError, RequestTimeoutError
from data_plane.gateway.proxy.cycle import Handler, ProxyCycle


def closing_response(status_line: bytes, error: GatewayError) -> bytes:
    """An error answer written by the protocol itself, ahead of any app: it closes."""
    body = error.body()
    return (
        b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%b" % (status_line, len(body), body)
    )


_HEAD, _IDLE, _BUSY = 0, 1, 2
"""What a connection waits for (`GatewayProtocol._waiting`)."""

_TICK_FLOOR_S = 0.01
"""The connection's tick never runs more often (a keep-alive of 0 must not spin)."""

_LINGER_S = 2.0
"""How long a refused connection is read (and dropped) before it is closed."""

SLOW_BODY_RESPONSE = closing_response(
    b"408 Request Timeout", RequestTimeoutError("The request body was not received in time.")
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


class GatewayProtocol(HttpToolsProtocol):
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_head_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024
    """A proxied request's body is refused (413) past this many bytes."""
    routes: Mapping[bytes, Handler] = {}
    """The proxy routes by path, served without ASGI."""
    _head_bytes = 0
    """Bytes read since the current head began (or the last head ended), up to one read
    more than counted: a read that completes a head is not counted against it."""
    _waiting: int = _HEAD
    """What the connection waits for: a request head, or (idle) the next request; or
    nothing (_BUSY: a request is in, its answer not done)."""
    _since = 0.0
    """When that wait began (the connection opened, the head's first byte, the answer)."""
    _ticker: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _in_body = False
    """The head of a request is in, the end of its body not yet."""
    _refused: asyncio.TimerHandle | None = None
    """Set once the protocol refused the connection: it closes when this fires."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self.loop.time()
        self._tick_s = max(_TICK_FLOOR_S, min(self.head_timeout_s, self.timeout_keep_alive) / 4)
        self._ticker = self.loop.call_later(self._tick_s, self._tick)

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return  # answered and closing: what still comes is dropped unread
        if not self._in_body:
            self._head_bytes += len(data)
        if self._waiting == _IDLE:  # bytes after an answer (the rest of its body): not idle
            self._since = self.loop.time()
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_body:
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_expired)
        elif self._head_bytes > self.max_head_bytes:
            self._head_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._waiting = _HEAD
        self._since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._waiting = _BUSY
        self._head_bytes = 0
        self._in_body = True
        handler = self._proxy_route()
        if handler is not None:
            self._start_proxy(handler)
            return
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # not an upgrade: a new request's cycle
            # Its task has not run yet: everything it writes goes through its own HeldHead.
            cycle.transport = HeldHead(self.transport, self.loop)  # type: ignore[assignment]

    def _proxy_route(self) -> Handler | None:
        """The handler of a proxy route this request is a plain `POST` to, if any."""
        if not self.routes or self.parser.get_method() != b"POST":
            return None
        url = self.url
        query = url.find(b"?")
        handler = self.routes.get(url if query < 0 else url[:query])
        if handler is None or self.parser.should_upgrade() or self.limit_concurrency is not None:
            return None
        return handler

    def _start_proxy(self, handler: Handler) -> None:
        parser = self.parser
        cycle = ProxyCycle(
            self.loop,
            self.transport,
            self.flow,
            self.headers,
            self.server_state.default_headers,
            keep_alive=parser.get_http_version() != "1.0" and parser.should_keep_alive(),
            expect_continue=self.expect_100_continue,
            limit=self.max_body_bytes,
            on_response=self.on_response_complete,
        )
        before = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if before is None or before.response_complete:
            self._start_asgi_task(cycle, handler)
        else:  # pipelined: it waits for the answer before it, as uvicorn's cycles do
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, handler))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if type(cycle) is not ProxyCycle:
            super()._start_asgi_task(cycle, app)
            return
        task = self.loop.create_task(cycle.run(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle) is ProxyCycle:
            cycle.feed(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        if type(cycle) is ProxyCycle:
            cycle.message_complete()
        else:
            super().on_message_complete()
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        cycle: Any = self.cycle
        if type(cycle) is ProxyCycle:
            cycle.connection_lost()
            self.cycle = None  # type: ignore[assignment]  # uvicorn's code below: its own cycles
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._refused is not None:
            self._refused.cancel()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        """uvicorn's, less its keep-alive timer per answer: the connection's tick closes
        it once idle for `timeout_keep_alive`."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # the next request was read already: serve it
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._waiting == _BUSY:  # (not when the next head has begun)
            self._waiting = _IDLE
            self._since = self.loop.time()

    def _tick(self) -> None:
        """Close the connection once a head or an idle wait has lasted too long."""
        self._ticker = None
        if self.transport.is_closing():
            return
        waiting = self._waiting
        if waiting != _BUSY:
            limit = self.head_timeout_s if waiting == _HEAD else self.timeout_keep_alive
            if self.loop.time() - self._since >= limit:
                self.transport.close()
                return
        self._ticker = self.loop.call_later(self._tick_s, self._tick)

    def _head_too_large(self) -> None:
        """431 and close, unless an answer is under way on this connection (then close)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            limit = self.max_head_bytes
            error = HeaderTooLargeError(f"The request head exceeds {limit} bytes.")
            self._refuse(closing_response(b"431 Request Header Fields Too Large", error))
        else:
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        """Send `response`, end the writing side, and close after `_LINGER_S`, reading and
        dropping what the client still sends meanwhile: closed at once with unread data,
        the connection would be reset and the client might lose the answer."""
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._refused = self.loop.call_later(_LINGER_S, self.transport.close)

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


def gateway_protocol(
    timeout_s: float,
    body_timeout_s: float = 30.0,
    max_head_bytes: int = 64 * 1024,
    *,
    max_body_bytes: int = 16 * 1024 * 1024,
    routes: Mapping[bytes, Handler] | None = None,
) -> type[GatewayProtocol]:
    """The protocol class for uvicorn's `http=` setting: these head and body deadlines,
    these bounds on a head's and a proxied body's size, and the proxy `routes` it serves
    without ASGI."""
    attributes: dict[str, Any] = {
        "head_timeout_s": timeout_s,
        "body_timeout_s": body_timeout_s,
        "max_head_bytes": max_head_bytes,
        "max_body_bytes": max_body_bytes,
        "routes": dict(routes or {}),
    }
    return type("GatewayProtocol", (GatewayProtocol,), attributes)
