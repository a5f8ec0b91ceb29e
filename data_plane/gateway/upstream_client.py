"""The hot path's HTTP/1.1 client: pooled keep-alive connections to the engines.

The proxy sends one kind of request (a POST with a body it already holds) and passes the
answer's bytes through, so it needs little of a general client. This one is an asyncio
protocol around httptools' response parser: the request head and body leave in one write,
the answer's body is handed over as it arrives (chunked encoding undone, nothing copied or
decoded), and finished connections go back to a per-upstream pool. Compared with aiohttp
on the same path it does about a third of the Python work per request (bench/gateway_overhead.py,
docs/benchmarks.md).

Timeouts belong to the caller (`asyncio.timeout` around each await, and a sweeper that
reads `last_data` and calls `abort` on a stalled stream), except the connect timeout.
Closing a response before its end closes its connection: the engine sees the disconnect
and aborts the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

_HIGH_WATER = 1 << 20
"""Buffered answer bytes at which the connection stops reading (a slow client)."""
_DELIMITING = frozenset((b"content-length", b"transfer-encoding"))


class UpstreamClientError(Exception):
    """The upstream could not be reached or broke the HTTP exchange."""


class UpstreamConnectError(UpstreamClientError):
    """No connection: refused, unreachable, or the connect timeout passed."""


class UpstreamDisconnectedError(UpstreamClientError):
    """The connection closed before the answer was complete."""


class UpstreamIdleError(UpstreamClientError):
    """The upstream sent nothing for longer than its stall bound, mid-answer (or it hung)."""


class UpstreamProtocolError(UpstreamClientError):
    """The upstream's bytes are not a valid HTTP/1.1 response."""


Address = tuple[str, int, bool]
"""Host, port, and whether to speak TLS."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time."""

    def __init__(self, client: UpstreamClient, address: Address) -> None:
        self._client = client
        self.address = address
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self._parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.idle_since = 0.0
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self._head_done = False
        self._delimited = False
        """The answer has a Content-Length or is chunked (else it ends with the connection)."""
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._complete = False
        self._keep_alive = False
        self._error: UpstreamClientError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._whole = False
        """The reader takes the whole body at once (`body`): never pause reading."""
        self.got_bytes = False
        self._sink: Callable[[bytes], bool] | None = None
        """Set by `pipe`: takes each body piece as it arrives."""
        self._tracking = False
        self.last_data = 0.0
        # Kept: on Python 3.11 every asyncio.get_running_loop() is a getpid system call.
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time

    # --- one exchange ---------------------------------------------------------------------

    def clock(self) -> float:
        """The event loop's time."""
        return self._clock()

    def begin(self, data: bytes) -> None:
        self.headers = []
        self.status = 0
        self._head_done = self._complete = self.got_bytes = self._delimited = False
        self._keep_alive = self._whole = self._tracking = False
        self._sink = None
        self._chunks = []
        self._buffered = 0
        self._error = None
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        self.transport.write(data)

    def track_data(self) -> None:
        """From now on, note when the upstream last sent bytes (`last_data`): one clock read
        per read from the socket, no timer; a sweeper elsewhere judges the silences."""
        self._tracking = True
        self.last_data = self._clock()

    def abort(self, error: UpstreamClientError) -> None:
        """Fail the exchange with `error` (its reader raises it) and close the connection."""
        self._fail(error)

    async def head(self) -> None:
        while not self._head_done:
            await self._wait()

    async def next_chunk(self) -> bytes:
        """The body bytes that arrived since the last call; b"" once the answer is complete."""
        while not self._chunks:
            if self._complete:
                return b""
            await self._wait()
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def body(self) -> bytes:
        self._whole = True  # the caller wants it all: no back-pressure, or it never ends
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        while not self._complete:
            await self._wait()
        data = b"".join(self._chunks)
        self._chunks = []
        return data

    def pipe(self, sink: Callable[[bytes], bool]) -> None:
        """From now on each body piece goes to `sink` as it arrives, within the read that
        brought it (no reader to wake per piece); what is buffered goes first. `sink`
        returns False when its side is backed up: reading pauses until `resume`."""
        self._sink = sink
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        backed_up = False
        for chunk in chunks:
            backed_up = not sink(chunk) or backed_up
        if backed_up and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        elif not backed_up:
            self.resume()

    async def piped(self) -> bool:
        """Until the piped answer is complete (True) or its sink backed up (False)."""
        while True:
            if self._error is not None:
                raise self._error
            if self._complete:
                return True
            if self._paused:
                return False
            await self._wait()

    def resume(self) -> None:
        """Read again after `pipe`'s sink backed up."""
        if self._paused:
            self._paused = False
            self.transport.resume_reading()

    @property
    def reusable(self) -> bool:
        return self._complete and self._keep_alive and not self.lost

    def _wait(self) -> asyncio.Future[None]:
        """What to await until the protocol has news; raises the connection's error, if
        any, first. A plain future, not a coroutine: one frame less to suspend and resume
        on every wait of the hot path (a stale waiter left behind is done, and ignored)."""
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self._tracking:
            self.last_data = self._clock()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._client.forget(self)
        if self._complete:
            return
        if self._head_done and not self._delimited:
            self._complete = True  # an answer delimited by the end of its connection
            self._wake()
            return
        self._fail(UpstreamDisconnectedError("the upstream closed the connection"))

    def _fail(self, error: UpstreamClientError) -> None:
        if self._error is None:
            self._error = error
        if self.transport is not None:
            self.transport.close()
        self._wake()

    # --- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if name.lower() in _DELIMITING:
            self._delimited = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        sink = self._sink
        if sink is not None:
            if not sink(body) and not self._paused:
                self._paused = True
                self.transport.pause_reading()
                self._wake()
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not (self._paused or self._whole):
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()  # the parser resets right after
        self._complete = True
        self._wake()


class UpstreamResponse:
    """An answer whose head has arrived; read its body, then release or close it."""

    __slots__ = ("_conn", "_done", "headers", "status")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._done = False
        self.status = conn.status
        self.headers = conn.headers

    async def read(self) -> bytes:
        """The whole body."""
        return await self._conn.body()

    async def readany(self) -> bytes:
        """The next body bytes as they arrive; b"" at the end."""
        return await self._conn.next_chunk()

    def track_data(self) -> None:
        """From now on, `last_data` says when the upstream last sent bytes."""
        self._conn.track_data()

    def pipe(self, sink: Callable[[bytes], bool]) -> None:
        """The rest of the body to `sink`, piece by piece as it arrives (see `piped`)."""
        self._conn.pipe(sink)

    async def piped(self) -> bool:
        """Until the piped body is complete (True) or its sink backed up (False: `resume`
        once it can take more)."""
        return await self._conn.piped()

    def resume(self) -> None:
        self._conn.resume()

    @property
    def last_data(self) -> float:
        """The loop time of the upstream's latest bytes (after `track_data`)."""
        return self._conn.last_data

    def abort(self, error: UpstreamClientError) -> None:
        """Make the reader fail with `error` now (a stalled or hung upstream); then close."""
        self._conn.abort(error)

    def release(self) -> None:
        """Done with a fully read answer: its connection goes back to the pool."""
        if not self._done:
            self._done = True
            self._conn._client.put_back(self._conn)

    def close(self) -> None:
        """Done, read or not: the connection is closed (an engine aborts the request)."""
        if not self._done:
            self._done = True
            self._conn.lost = True
            self._conn.transport.close()


class UpstreamClient:
    """Keep-alive connection pools, one per upstream address, for POST requests.

    An idle connection is kept `keepalive_s` (shorter than the engines' own keep-alive, 5 s
    in uvicorn, so that the upstream rarely closes one just as it is reused). A reused
    connection that turns out closed before any byte of the answer is replaced by a new one
    once: the request never reached an engine that would answer it.
    """

    def __init__(self, connect_timeout_s: float, keepalive_s: float = 4.0) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self._idle: dict[Address, deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False
        self._ssl: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def post(self, address: Address, head: bytes, body: bytes) -> UpstreamResponse:
        """Send `head` (request line and headers, ending in a blank line) and `body`; return
        once the answer's head has arrived."""
        data = head + body
        conn = self._pooled(address)
        if conn is not None:
            conn.begin(data)
            try:
                await conn.head()
                return UpstreamResponse(conn)
            except UpstreamDisconnectedError:
                if conn.got_bytes:
                    raise
            except BaseException:
                conn.transport.close()
                raise
        conn = await self._connect(address)
        conn.begin(data)
        try:
            await conn.head()
        except BaseException:
            conn.transport.close()
            raise
        return UpstreamResponse(conn)

    def _pooled(self, address: Address) -> _Connection | None:
        idle = self._idle.get(address)
        if not idle:
            return None
        oldest_usable = asyncio.get_running_loop().time() - self.keepalive_s
        while idle and idle[0].idle_since < oldest_usable:
            # Expired, oldest first: otherwise, under steady traffic that always finds a
            # warm connection at the other end, they would stay open (up to the peak
            # concurrency) for as long as the upstream keeps them (an hour in aiohttp).
            idle.popleft().transport.close()
        while idle:
            conn = idle.pop()  # the most recently used: the warmest, least likely closed
            if conn.lost or conn.transport.is_closing():
                continue
            if conn.idle_since < oldest_usable:
                conn.transport.close()
                continue
            return conn
        return None

    async def _connect(self, address: Address) -> _Connection:
        if self._closed:
            raise UpstreamConnectError("the client is closed")
        loop = asyncio.get_running_loop()
        host, port, tls = address
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, address), host, port, ssl=self._tls() if tls else None
                )
        except TimeoutError:
            raise UpstreamConnectError(f"connect to {host}:{port} timed out") from None
        except OSError as exc:  # ssl.SSLError included
            raise UpstreamConnectError(
                f"cannot connect to {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._open.add(conn)
        return conn

    def put_back(self, conn: _Connection) -> None:
        if not conn.reusable or self._closed:
            conn.transport.close()
            return
        conn.idle_since = conn.clock()
        self._idle.setdefault(conn.address, deque()).append(conn)

    def forget(self, conn: _Connection) -> None:
        """A connection closed: drop it from the pool (called by the connection)."""
        self._open.discard(conn)
        idle = self._idle.get(conn.address)
        if idle is not None:
            with contextlib.suppress(ValueError):
                idle.remove(conn)
            if not idle:
                del self._idle[conn.address]

    def idle_connections(self, address: Address) -> int:
        return len(self._idle.get(address, ()))

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def close(self) -> None:
        """Close every connection; later requests fail with UpstreamConnectError."""
        self._closed = True
        for conn in list(self._open):
            conn.transport.close()
        self._idle.clear()
        for _ in range(100):  # let connection_lost run, so that nothing outlives the loop
            if not self._open:
                break
            await asyncio.sleep(0)
