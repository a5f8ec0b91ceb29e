"""One attempt on one replica: send the request, wait (bounded) for the first byte, and
answer the client, or report the failure before it so that another replica may be tried."""

from __future__ import annotations

import asyncio
import math

from data_plane.gateway.engine_errors import as_openai_error
from data_plane.gateway.fleet import Replica
from data_plane.gateway.health import Failure
from data_plane.gateway.liveness import first_byte_timeout
from data_plane.gateway.proxy.asgi import Series
from data_plane.gateway.proxy.exchange import Exchange, Failed, InFlight, response_headers
from data_plane.gateway.proxy.relay import relay
from data_plane.gateway.proxy.tokens import count_tokens
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.upstream import usage_tokens
from data_plane.gateway.upstream_client import (
    Address,
    UpstreamClientError,
    UpstreamConnectError,
    UpstreamDisconnectedError,
    UpstreamResponse,
)

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


async def try_replica(  # noqa: PLR0912, PLR0915, PLR0917 - one place for every way an attempt can end
    gw: Gateway,
    exchange: Exchange,
    replica: Replica,
    series: Series,
    target: tuple[Address, bytes],
    path: str,
) -> str | Failed:
    """Serve from `replica` (`target`: its address and request line, `path` the upstream
    path): the status class sent, or the failure before the first byte. `series` labels
    the answer's metrics: (model, adapter or "")."""
    assert exchange.fields is not None
    stream = exchange.fields.stream
    response: UpstreamResponse | None = None
    complete = False
    address, line = target
    body = exchange.body
    head = b"%bcontent-length: %d\r\n%b" % (line, len(body), exchange.forward)
    limit = first_byte_timeout(
        gw.watchdog.timeouts,
        replica.timing,
        waiting=replica.waiting,
        running=replica.running,
        stream=stream,
        max_tokens=exchange.fields.max_tokens,
    )
    assert exchange.task is not None
    sent = asyncio.get_running_loop().time()
    in_flight = InFlight(exchange.task, sent, sent + limit)
    replica.attempts.add(in_flight)
    try:
        try:
            response = await gw.upstream.post(address, head, body)
            status = response.status
            if stream and status == 200:
                # Hold the headers until the first chunk: a failure before it can
                # still be retried elsewhere.
                payload = await response.readany()
            else:
                payload = await response.read()
            in_flight.deadline = math.inf  # the first byte came: no timeout from here on
        except asyncio.CancelledError:
            if not in_flight.expired:
                raise
            exchange.task.uncancel()  # the sweeper's, not the client's: another replica may answer
            return Failed(Failure.TIMEOUT)
        except (UpstreamConnectError, UpstreamDisconnectedError) as exc:
            return Failed(Failure.CONNECT, body=str(exc).encode())
        except UpstreamClientError as exc:
            return Failed(Failure.STATUS, 502, str(exc).encode())
        headers = response_headers(response.headers, exchange.request_id, gw.draining)
        if status in RETRYABLE_STATUS:
            return Failed(Failure.STATUS, status, payload, tuple(headers))
        if not stream or status != 200:
            complete = True
            if status >= 400:
                payload = as_openai_error(status, payload, path)
            await exchange.respond(status, headers, payload)
            gw.succeeded(replica)
            if status == 200:
                count_tokens(gw, series, payload, exchange.trace)
                if exchange.caller.tenant is not None:  # tenancy hook: charge usage
                    exchange.tokens = usage_tokens(payload[-1024:]) or usage_tokens(payload)
            return f"{status // 100}xx"
        if not payload:
            return Failed(Failure.STATUS, 502, b"the upstream ended its stream before a chunk")
        complete = await relay(gw, exchange, response, headers, payload, replica, series, in_flight)
        return "2xx" if complete else "stream_error"
    finally:
        replica.attempts.discard(in_flight)
        if response is not None:
            if complete:
                response.release()
            else:
                response.close()
