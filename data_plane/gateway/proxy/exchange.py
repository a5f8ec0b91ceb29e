"""One client exchange: its state, its request id, and its attempts as the watchdog sees
them."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
from dataclasses import dataclass

from data_plane.gateway.errors import GatewayError
from data_plane.gateway.health import Failure
from data_plane.gateway.proxy.asgi import Headers
from data_plane.gateway.proxy.conn import ClientConn
from data_plane.gateway.request_fields import RequestFields
from data_plane.gateway.tenancy.service import OPERATOR, Caller
from data_plane.gateway.tenancy.upstream import UsageStripper
from data_plane.gateway.tracing import TRACE_HEADERS, RequestSpan
from data_plane.gateway.upstream_client import UpstreamIdleError, UpstreamResponse

_HOP_BY_HOP = (
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailers", b"transfer-encoding", b"upgrade", b"content-length", b"x-request-id",
)  # fmt: skip
REQUEST_DROP = frozenset((*_HOP_BY_HOP, b"host", b"expect"))
TRACED_DROP = REQUEST_DROP | frozenset(TRACE_HEADERS)
"""Tracing on: the caller's trace headers are replaced by the gateway span's (tracing.py)."""
_RESPONSE_DROP = frozenset((*_HOP_BY_HOP, b"date", b"server"))
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


@dataclass(slots=True)
class Exchange:
    """One client exchange: what it asked for and what happened to it so far."""

    conn: ClientConn
    request_id: bytes
    arrived: float
    forward: bytes
    """The client's headers to pass on, as header lines (hop-by-hop ones dropped)."""
    body: bytes = b""
    fields: RequestFields | None = None
    started: bool = False
    """Response headers went to the client: no retry, no error status any more."""
    done: bool = False
    disconnected: bool = False
    # tenancy hook: who asked, the tokens to charge, the usage event to hide
    caller: Caller = OPERATOR
    tokens: int = 0
    stripper: UsageStripper | None = None
    draining: bool = False
    """The gateway drains: answers close their connection (the client reconnects elsewhere)."""
    trace: RequestSpan | None = None
    """The request's span; None while tracing is off (then nothing of it runs)."""
    task: asyncio.Task[None] | None = None
    """The task serving the request (an attempt's timeout cancels it)."""

    async def respond(self, status: int, headers: Headers, payload: bytes) -> None:
        if self.trace is not None:
            self.trace.responded(status)
        self.started = True
        self.done = True
        await self.conn.answer(status, headers, payload)

    async def fail(self, exc: GatewayError) -> None:
        if not self.started:
            headers = [_JSON, (b"x-request-id", self.request_id), *exc.headers()]
            if self.draining:
                headers.append(_CLOSE)
            await self.respond(exc.status, headers, exc.body())


class RequestIds:
    """Unique request ids, cheaper than uuid4: a random per-process prefix and a counter."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def next(self) -> bytes:
        return f"{self._prefix}{next(self._count):016x}".encode()


class InFlight:
    """One attempt on one replica, as the watchdog sees it (fleet.InFlightAttempt).

    No timer of its own: the watchdog's sweeper aborts it once `deadline` has passed
    (at most one sweep late), and an abort before the first byte cancels the request's
    task, which the attempt takes as a timeout (`expired`)."""

    __slots__ = ("deadline", "expired", "response", "sent", "task")

    def __init__(self, task: asyncio.Task[None], sent: float, deadline: float) -> None:
        self.task = task
        self.sent = sent
        self.deadline = deadline
        self.expired = False
        self.response: UpstreamResponse | None = None
        """Set once the stream is relayed (its first byte reached the client)."""

    def silent_since(self) -> float | None:
        response = self.response
        return None if response is None else response.last_data

    def abort(self, message: str) -> None:
        response = self.response
        if response is not None:
            response.abort(UpstreamIdleError(message))
        elif not self.expired and self.deadline != math.inf:  # still waiting: give up
            self.expired = True
            self.task.cancel()


@dataclass(slots=True)
class Failed:
    """A failure before the first byte: the caller may try another replica."""

    kind: Failure
    status: int = 0
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


def response_headers(upstream_headers: Headers, request_id: bytes, close: bool) -> Headers:
    """The answer's headers for the client: the upstream's, less hop-by-hop ones."""
    out = [(k, v) for k, v in upstream_headers if k.lower() not in _RESPONSE_DROP]
    out.append((b"x-request-id", request_id))
    if close:
        out.append(_CLOSE)
    return out
