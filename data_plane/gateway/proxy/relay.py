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
from data_plane.gateway.tenancy.upstream import usage_tokens
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
    attempt: InFlight | None,
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
    if attempt is not None:
        replica.latency.observe(first_at - attempt.sent)
        attempt.response = response
    exchange.started = True
    stripper = exchange.stripper  # tenancy hook: hide the usage event we asked for
    await conn.begin_stream(200, headers, stripper.feed(first) if stripper is not None else first)
    events = first.count(b"data: ")
    prev = last = first
    try:
        while chunk := await response.readany():
            events += chunk.count(b"data: ")
            prev, last = last, chunk
            if stripper is not None:
                chunk = stripper.feed(chunk)
                if not chunk:
                    continue
            await conn.send_chunk(chunk)
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
    rest = stripper.flush() if stripper is not None else b""
    await conn.end_stream(rest)
    gw.succeeded(replica)
    tail = last if prev is last else prev + last
    if exchange.caller.tenant is not None:  # tenancy hook: charge usage
        exchange.tokens = usage_tokens(stripper.usage if stripper else tail)
    count_stream(gw, series, tail, events, loop.time() - first_at, exchange.trace)
    return True
