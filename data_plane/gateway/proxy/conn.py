"""The client's side of one proxied request, as the proxy uses it: its headers, its body,
its answer (whole or streamed) and its disconnect.

Two implementations: `cycle.ProxyCycle`, which the gateway's own HTTP protocol serves
the proxy routes with (no ASGI on the way), and `AsgiConn` here, for the same routes
reached through ASGI (another server, or a path the protocol leaves to the app, such as
one with percent-escapes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from data_plane.gateway.errors import BadRequestError, RequestTimeoutError, RequestTooLargeError
from data_plane.gateway.proxy.asgi import Headers, Receive, Scope, Send

if TYPE_CHECKING:
    from data_plane.gateway.proxy.exchange import Exchange

WATCH_AFTER_S = 0.02
"""ASGI only: a disconnect is watched for once the request has taken this long (most
answers come back sooner, and a watching task per request costs on the hot path)."""


class ClientConn(Protocol):
    """One request's client connection. `answer` and `end_stream` complete the answer;
    after a disconnect, writes are dropped."""

    headers: Headers
    """The request's headers, names in lower case."""

    async def body(self, length: bytes, limit: int, timeout_s: float) -> bytes:
        """The whole body (`length`: its Content-Length, or b""), at most `limit` bytes;
        raises `RequestTooLargeError`, `RequestTimeoutError` or `BadRequestError`."""
        ...

    async def answer(self, status: int, headers: Headers, body: bytes) -> None:
        """The whole answer (Content-Length is added)."""
        ...

    async def begin_stream(self, status: int, headers: Headers, first: bytes) -> None:
        """Start a streamed answer (chunked) with its first chunk."""
        ...

    async def send_chunk(self, data: bytes) -> None:
        """One more chunk (waits while the client's socket is backed up)."""
        ...

    async def end_stream(self, last: bytes) -> None:
        """The last chunk, and the end of the answer."""
        ...

    def chunk_writer(self) -> Callable[[bytes], bool] | None:
        """Writes a chunk at once, within the caller's callback (False: the client is
        backed up, await `drained`); None: this connection writes through `send_chunk`."""
        ...

    async def drained(self) -> None:
        """Until the client has taken what was written."""
        ...

    def watch(self, exchange: Exchange) -> None:
        """From now on a disconnect before `exchange.done` sets `exchange.disconnected`
        and cancels `exchange.task`."""
        ...

    def unwatch(self) -> None:
        """Stop watching (the request is over)."""
        ...


class AsgiConn:
    """`ClientConn` over ASGI's receive and send."""

    __slots__ = ("_receive", "_send", "_start_watch", "_watch", "headers")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.headers: Headers = scope["headers"]
        self._receive = receive
        self._send = send
        self._watch: asyncio.Task[None] | None = None
        self._start_watch: asyncio.TimerHandle | None = None

    async def body(self, length: bytes, limit: int, timeout_s: float) -> bytes:
        check_length(length, limit)
        receive = self._receive
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if message["type"] == "http.disconnect":
                raise BadRequestError("The client went away before sending its body.")
            return body
        chunks = [body]
        size = len(body)
        try:
            async with asyncio.timeout(timeout_s):
                while message.get("more_body", False):
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise BadRequestError("The client went away before sending its body.")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise RequestTooLargeError(f"The request body exceeds {limit} bytes.")
                    chunks.append(chunk)
        except TimeoutError:
            raise RequestTimeoutError("The request body was not received in time.") from None
        return b"".join(chunks)

    async def answer(self, status: int, headers: Headers, body: bytes) -> None:
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})

    async def begin_stream(self, status: int, headers: Headers, first: bytes) -> None:
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send_chunk(first)

    async def send_chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self, last: bytes) -> None:
        await self._send({"type": "http.response.body", "body": last, "more_body": False})

    def chunk_writer(self) -> None:
        return None  # ASGI's send is a coroutine

    async def drained(self) -> None:
        return  # send waits for the client itself

    def watch(self, exchange: Exchange) -> None:
        loop = asyncio.get_running_loop()
        self._start_watch = loop.call_later(WATCH_AFTER_S, self._begin_watching, exchange)

    def _begin_watching(self, exchange: Exchange) -> None:
        if not exchange.done:
            self._watch = asyncio.get_running_loop().create_task(self._run(exchange))

    async def _run(self, exchange: Exchange) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not exchange.done:
                    assert exchange.task is not None
                    exchange.disconnected = True
                    exchange.task.cancel()
                return

    def unwatch(self) -> None:
        if self._start_watch is not None:
            self._start_watch.cancel()
        if self._watch is not None:
            self._watch.cancel()


def check_length(length: bytes, limit: int) -> None:
    """A declared Content-Length: a number, and at most `limit`."""
    if length:
        try:
            declared = int(length)
        except ValueError:
            raise BadRequestError("Content-Length is not a number.") from None
        if declared > limit:
            raise RequestTooLargeError(f"The request body exceeds {limit} bytes.")
