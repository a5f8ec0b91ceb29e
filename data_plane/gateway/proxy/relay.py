"""A streamed answer passed through from its first chunk, chunk by chunk as it comes."""

from __future__ import annotations

import asyncio

from data_plane.gateway.errors import sse_error_event
from data_plane.gateway.fleet import Replica
from data_plane.gateway.health import Failure
from data_plane.gateway.proxy.asgi import Headers, Series
from data_plane.gateway.proxy.exchange import Exchange, InFlight
from data_plane.gateway.proxy.tokens import count_stream
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.upstream import UsageStripper, usage_tokens
from data_plane.gateway.upstream_client import (
    UpstreamClientError,
    UpstreamIdleError,
    UpstreamResponse,
)


async def relay(  # noqa: PLR0917
    gw: Gateway,
    exchange: Exchange,
    response: UpstreamResponse,
    headers: Headers,
    first: bytes,
    replica: Replica,
    series: Series,
    attempt: InFlight,
) -> bool:
    """Pass a stream through from its first chunk; True when it ended well."""
    conn = exchange.conn
    loop = asyncio.get_running_loop()
    first_at = loop.time()
    gw.metrics.observe(gw.metrics.ttft, first_at - exchange.arrived, *series)
    if exchange.trace is not None:
        exchange.trace.responded(200)
        exchange.trace.first_token()
    response.track_data()  # the watchdog's sweeper judges the silences from here on
    replica.latency.observe(first_at - attempt.sent)
    attempt.response = response
    exchange.started = True
    tally = _Tally(first, exchange.stripper)  # tenancy hook: hide the usage event we asked for
    await conn.begin_stream(200, headers, tally.out(first))
    try:
        write = conn.chunk_writer()
        if write is None:
            while chunk := await response.readany():
                if out := tally.feed(chunk):
                    await conn.send_chunk(out)
        else:  # each chunk written within the read that brought it: no wake-up per chunk
            response.pipe(lambda chunk: write(tally.feed(chunk)))
            while not await response.piped():  # the client is backed up
                await conn.drained()
                response.resume()
    except UpstreamClientError as exc:
        stalled = isinstance(exc, UpstreamIdleError)
        kind = Failure.STALL if stalled else Failure.STATUS
        gw.failed(replica, kind)
        message = str(exc) if stalled else "The upstream stream broke mid-way."
        exchange.done = True
        event = sse_error_event(message, code=f"upstream_{kind.value}")
        await conn.end_stream(event)
        return False
    exchange.done = True
    await conn.end_stream(tally.rest())
    gw.succeeded(replica)
    tail = tally.last if tally.prev is tally.last else tally.prev + tally.last
    if exchange.caller.tenant is not None:  # tenancy hook: charge usage
        exchange.tokens = usage_tokens(tally.stripper.usage if tally.stripper else tail)
    count_stream(gw, series, tail, tally.events, loop.time() - first_at, exchange.trace)
    return True


class _Tally:
    """What a stream's chunks add up to on their way: SSE events, the last two chunks (the
    usage is in them), and the client's bytes, less the usage event when it is hidden."""

    __slots__ = ("events", "last", "prev", "stripper")

    def __init__(self, first: bytes, stripper: UsageStripper | None) -> None:
        self.events = first.count(b"data: ")
        self.prev = self.last = first
        self.stripper = stripper

    def out(self, chunk: bytes) -> bytes:
        return self.stripper.feed(chunk) if self.stripper is not None else chunk

    def feed(self, chunk: bytes) -> bytes:
        """Count `chunk`; what of it goes to the client."""
        self.events += chunk.count(b"data: ")
        self.prev, self.last = self.last, chunk
        return self.stripper.feed(chunk) if self.stripper is not None else chunk

    def rest(self) -> bytes:
        return self.stripper.flush() if self.stripper is not None else b""
