"""One proxied request on the gateway's own HTTP protocol: no ASGI scope, messages or
send checks on the way (measured in docs/benchmarks.md).

The protocol (`http_protocol.py`) makes a `ProxyCycle` for a `POST` to a proxy route
instead of uvicorn's request cycle, feeds it the body and tells it of a disconnect; the
cycle is the request's `ClientConn` (conn.py). It keeps the attributes uvicorn's protocol
reads from a cycle (`keep_alive`, `response_started`, `response_complete`), so keep-alive,
pipelining and a graceful shutdown work as for any other request.

Headers written here come from the upstream (parsed by httptools, which refuses CR and LF
in them), the client's own request id (parsed the same way) or the gateway: none can split
the answer, so they are not checked again as uvicorn checks an app's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from data_plane.gateway.errors import BadRequestError, RequestTooLargeError
from data_plane.gateway.proxy.asgi import Headers
from data_plane.gateway.proxy.conn import check_length

if TYPE_CHECKING:
    from data_plane.gateway.proxy.exchange import Exchange

log = logging.getLogger("hoist.gateway.proxy")

Handler = Callable[["ProxyCycle"], Coroutine[Any, Any, None]]
"""What serves a proxy route: `ProxyEndpoint.serve`."""

_STATUS_LINES = {s.value: b"HTTP/1.1 %d %b\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


class ProxyCycle:
    """One request's body, answer and disconnect, written straight to the transport."""

    __slots__ = (
        "_chunks", "_continue", "_exchange", "_flow", "_limit", "_loop", "_on_response", "_size",
        "_waiter", "default_headers", "disconnected", "headers", "keep_alive",
        "more_body", "response_complete", "response_started", "too_large", "transport",
    )  # fmt: skip

    def __init__(  # noqa: PLR0917 - what the protocol knows of the request
        self,
        loop: asyncio.AbstractEventLoop,
        transport: Any,
        flow: Any,
        headers: Headers,
        default_headers: Headers,
        keep_alive: bool,
        expect_continue: bool,
        limit: int,
        on_response: Callable[[], None],
    ) -> None:
        self.transport = transport
        self._loop = loop
        self._flow = flow  # uvicorn's FlowControl: write_paused, drain()
        self.headers = headers
        self.default_headers = default_headers
        self.keep_alive = keep_alive
        self._continue = expect_continue
        self._limit = limit
        self._on_response = on_response
        self._chunks: list[bytes] = []
        self._size = 0
        self.more_body = True
        self.too_large = False
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self._waiter: asyncio.Future[None] | None = None
        self._exchange: Exchange | None = None

    async def run(self, handler: Handler) -> None:
        """Serve the request with `handler`; what escapes it ends the answer (500 or a
        close) as uvicorn ends an app's."""
        try:
            await handler(self)
        except asyncio.CancelledError:
            self.transport.close()
            raise
        except Exception:
            log.exception("the proxy failed a request")
            if not self.response_started:
                self.response_started = True
                self.transport.write(_INTERNAL_ERROR)
            self.transport.close()
        else:
            if not self.response_complete and not self.disconnected:
                log.error("the proxy returned without completing its answer")
                self.transport.close()

    # --- fed by the protocol --------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.response_complete or self.too_large:
            return
        self._size += len(data)
        if self._size > self._limit:
            self.too_large = True
            self._chunks = []
        else:
            self._chunks.append(data)
        self._wake()

    def message_complete(self) -> None:
        self.more_body = False
        self._wake()

    def connection_lost(self) -> None:
        if not self.response_complete:
            self.disconnected = True
        self._wake()
        exchange = self._exchange
        if exchange is not None and not exchange.done:
            exchange.disconnected = True
            assert exchange.task is not None
            exchange.task.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- ClientConn -----------------------------------------------------------------------

    async def body(self, length: bytes, limit: int, timeout_s: float) -> bytes:
        """The body; its deadline is the protocol's (408 and a close, as for every route)."""
        check_length(length, min(limit, self._limit))
        if self._continue and self.more_body and not self.transport.is_closing():
            self._continue = False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while self.more_body and not (self.too_large or self.disconnected):
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        if self.too_large or self._size > limit:
            raise RequestTooLargeError(f"The request body exceeds {min(limit, self._limit)} bytes.")
        if self.disconnected:
            raise BadRequestError("The client went away before sending its body.")
        chunks = self._chunks
        self._chunks = []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _head(self, status: int, headers: Headers) -> list[bytes]:
        """The status line and header lines; a `connection: close` among them ends the
        connection after this answer."""
        out = [_status_line(status)]
        closing = False
        for name, value in self.default_headers:
            out += (name, b": ", value, b"\r\n")
        for name, value in headers:
            if name == b"connection" and value.lower() == b"close":
                closing = True
            out += (name, b": ", value, b"\r\n")
        if closing:
            self.keep_alive = False
        elif not self.keep_alive:
            out.append(b"connection: close\r\n")
        return out

    async def answer(self, status: int, headers: Headers, body: bytes) -> None:
        if self.disconnected or self.response_started:
            return
        out = self._head(status, headers)
        out += (b"content-length: %d\r\n\r\n" % len(body), body)
        self.response_started = True
        self.transport.write(b"".join(out))
        self._complete()

    async def begin_stream(self, status: int, headers: Headers, first: bytes) -> None:
        if self.disconnected or self.response_started:
            return
        out = self._head(status, headers)
        out.append(b"transfer-encoding: chunked\r\n\r\n")
        if first:
            out += (b"%x\r\n" % len(first), first, b"\r\n")
        self.response_started = True
        self.transport.write(b"".join(out))

    async def send_chunk(self, data: bytes) -> None:
        if not self.write_chunk(data):
            await self.drained()

    def chunk_writer(self) -> Callable[[bytes], bool]:
        return self.write_chunk

    def write_chunk(self, data: bytes) -> bool:
        """One more chunk, now; False once the client's socket is backed up."""
        if self.disconnected or self.response_complete:
            return True
        if data:
            self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return not self._flow.write_paused

    async def drained(self) -> None:
        if self._flow.write_paused and not self.disconnected:
            await self._flow.drain()

    async def end_stream(self, last: bytes) -> None:
        if self.disconnected or self.response_complete:
            return
        if last:
            self.transport.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(last), last))
        else:
            self.transport.write(b"0\r\n\r\n")
        self._complete()

    def _complete(self) -> None:
        self.response_complete = True
        if not self.keep_alive:
            self.transport.close()
        on_response = self._on_response
        self._on_response = _nothing
        on_response()

    def watch(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def unwatch(self) -> None:
        self._exchange = None


def _nothing() -> None:
    """A completed cycle's `on_response`: the protocol hears of an answer once."""
