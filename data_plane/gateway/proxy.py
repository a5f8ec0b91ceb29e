"""The hot path: `POST /v1/chat/completions`, `/v1/completions`, `/v1/responses` and
`/v1/embeddings` as plain ASGI apps (SSE streams are passed through as they come).

Per request: read the body (bounded), read the routing fields, pick a replica, send the
client's bytes upstream on the pooled session and pass the answer's bytes back. Failures
before the first byte reached the client are retried on another replica; after it, a
streamed answer ends with an SSE error event (no `data: [DONE]`). A client that goes away
cancels the upstream request (its connection is closed, so the engine aborts the generation).

Each attempt registers with its replica (`Replica.attempts`) for the watchdog: its wait for
the first byte is bounded by a timeout derived from the engine's timing and queue
(liveness.py), which the watchdog brings forward when the replica hangs; once streaming,
the watchdog's sweeper reads when its last bytes came and aborts it when it stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from data_plane.gateway.engine_errors import as_openai_error
from data_plane.gateway.errors import (
    BadRequestError,
    GatewayError,
    NoReadyReplicaError,
    OverCapacityError,
    RequestTimeoutError,
    RequestTooLargeError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    sse_error_event,
)
from data_plane.gateway.fleet import ModelRoute, Replica
from data_plane.gateway.health import Failure
from data_plane.gateway.liveness import first_byte_timeout
from data_plane.gateway.metrics import UNKNOWN
from data_plane.gateway.request_fields import (
    Endpoint,
    RequestFields,
    check_token_bound,
    parse_request,
)
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.service import OPERATOR, Caller
from data_plane.gateway.tenancy.upstream import UsageStripper, usage_tokens
from data_plane.gateway.tracing import TRACE_HEADERS, RequestSpan
from data_plane.gateway.upstream_client import (
    Address,
    UpstreamClientError,
    UpstreamConnectError,
    UpstreamDisconnectedError,
    UpstreamIdleError,
    UpstreamResponse,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
Series = tuple[str, str]
"""An answer's metric labels: (model, adapter or "")."""

log = logging.getLogger("hoist.gateway.proxy")

_HOP_BY_HOP = (
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailers", b"transfer-encoding", b"upgrade", b"content-length", b"x-request-id",
)  # fmt: skip
_REQUEST_DROP = frozenset((*_HOP_BY_HOP, b"host", b"expect"))
_TRACED_DROP = _REQUEST_DROP | frozenset(TRACE_HEADERS)
"""Tracing on: the caller's trace headers are replaced by the gateway span's (tracing.py)."""
_RESPONSE_DROP = frozenset((*_HOP_BY_HOP, b"date", b"server"))
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")
_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_WATCH_AFTER_S = 0.02
_PROMPT_TOKENS = re.compile(rb'"(?:prompt|input)_tokens"\s*:\s*(\d+)')  # Responses: input/output
_COMPLETION_TOKENS = re.compile(rb'"(?:completion|output)_tokens"\s*:\s*(\d+)')


@dataclass(slots=True)
class _Exchange:
    """One client exchange: what it asked for and what happened to it so far."""

    send: Send
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

    async def respond(self, status: int, headers: Headers, payload: bytes) -> None:
        headers.append((b"content-length", str(len(payload)).encode()))
        if self.trace is not None:
            self.trace.responded(status)
        self.started = True
        self.done = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": payload})

    async def fail(self, exc: GatewayError) -> None:
        if not self.started:
            headers = [_JSON, (b"x-request-id", self.request_id), *exc.headers()]
            if self.draining:
                headers.append(_CLOSE)
            await self.respond(exc.status, headers, exc.body())


class _RequestIds:
    """Unique request ids, cheaper than uuid4: a random per-process prefix and a counter."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def next(self) -> bytes:
        return f"{self._prefix}{next(self._count):016x}".encode()


class _Watcher:
    """Cancels a request's task when its client disconnects."""

    __slots__ = ("_exchange", "_receive", "_task", "_watch")

    def __init__(self, receive: Receive, exchange: _Exchange, task: asyncio.Task[None]) -> None:
        self._receive = receive
        self._exchange = exchange
        self._task = task
        self._watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self._exchange.done:
            self._watch = asyncio.get_running_loop().create_task(self._run())

    def cancel(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    async def _run(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._exchange.done:
                    self._exchange.disconnected = True
                    self._task.cancel()
                return


class _InFlight:
    """One attempt on one replica, as the watchdog sees it (fleet.InFlightAttempt)."""

    __slots__ = ("response", "sent", "timeout")

    def __init__(self, timeout: asyncio.Timeout, sent: float) -> None:
        self.timeout = timeout
        self.sent = sent
        self.response: UpstreamResponse | None = None
        """Set once the stream is relayed (its first byte reached the client)."""

    def silent_since(self) -> float | None:
        response = self.response
        return None if response is None else response.last_data

    def abort(self, message: str) -> None:
        response = self.response
        if response is not None:
            response.abort(UpstreamIdleError(message))
            return
        with contextlib.suppress(RuntimeError):  # the wait is over: nothing to bring forward
            self.timeout.reschedule(asyncio.get_running_loop().time())


@dataclass(slots=True)
class _Failed:
    """A failure before the first byte: the caller may try another replica."""

    kind: Failure
    status: int = 0
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


class ProxyEndpoint:
    def __init__(self, gateway: Gateway, endpoint: Endpoint, upstream_path: str) -> None:
        self.gw = gateway
        self.endpoint = endpoint
        self.path = upstream_path
        self._ids = _RequestIds()
        self._targets: dict[str, tuple[Address, bytes]] = {}

    def _target(self, base: str) -> tuple[Address, bytes]:
        """A replica's address and request line with Host, built once per replica."""
        target = self._targets.get(base)
        if target is None:
            if len(self._targets) > 4096:  # replicas come and go: keep the cache bounded
                self._targets.clear()
            url = urlsplit(base)
            address = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80),
                       url.scheme == "https")  # fmt: skip
            path = url.path.rstrip("/") + self.path
            line = f"POST {path} HTTP/1.1\r\nhost: {url.netloc}\r\n".encode("latin-1")
            target = self._targets[base] = (address, line)
        return target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: PLR0912, PLR0915 - the hot path, kept flat on purpose
        gw = self.gw
        metrics = gw.metrics
        loop = asyncio.get_running_loop()
        request_id = auth = length = traceparent = tracestate = b""
        forward: list[bytes] = []
        tracer = gw.tracer
        drop = _REQUEST_DROP if tracer is None else _TRACED_DROP
        for key, value in scope["headers"]:
            if key in drop:
                if key == b"x-request-id":
                    request_id = value
                elif key == b"content-length":
                    length = value
                elif key == b"traceparent":
                    traceparent = value
                elif key == b"tracestate":
                    tracestate = value
                continue
            if key == b"authorization":
                auth = value
            forward += (key, b": ", value, b"\r\n")
        if not request_id or len(request_id) > 200:
            request_id = self._ids.next()
        trace = None
        if tracer is not None:  # tracing hook: join the caller's trace, parent the engine's
            trace = RequestSpan(tracer, self.endpoint, traceparent, tracestate)
            forward.append(trace.header())
        forward += (b"x-request-id: ", request_id, b"\r\n\r\n")
        exchange = _Exchange(send, request_id, loop.time(), b"".join(forward), trace=trace)
        exchange.draining = gw.draining
        try:
            caller = exchange.caller = gw.tenancy.authenticate(auth)  # tenancy hook: 401
            exchange.body = await self._read_body(receive, length)
            fields = parse_request(exchange.body, self.endpoint, gw.settings.prefix_chars)
            exchange.fields = fields
            if trace is not None:
                trace.asked_for(fields.model)
            tenant = caller.tenant
            cap = gw.settings.max_request_tokens
            if tenant is not None and tenant.max_request_tokens is not None:
                cap = tenant.max_request_tokens
            check_token_bound(fields, cap, gw.settings.assumed_max_tokens)
            route, adapter = gw.fleet.resolve(exchange.fields.model)
            if trace is not None:
                trace.routed(route.name, adapter, caller.name)
            if caller.tenant is not None:  # tenancy hook: 403/404/429, cache salt, usage
                uses = [(route.name, route.tenant)]
                if adapter is not None:
                    uses.append((adapter, gw.fleet.adapters[adapter].tenant))
                exchange.body, strip = await gw.tenancy.prepare(
                    caller, exchange.fields, exchange.body, uses, loop.time()
                )
                exchange.stripper = UsageStripper() if strip else None
        except GatewayError as exc:
            await exchange.fail(exc)
            status_class = f"{exc.status // 100}xx"
            metrics.child(metrics.requests, UNKNOWN, "", self.endpoint, status_class).inc()
            if trace is not None:
                trace.end(status_class)
            return
        task = asyncio.current_task()
        assert task is not None
        # Most answers come back sooner than a client gives up: watch for a disconnect only
        # once the request has taken a while (a task per request costs on the hot path).
        watcher = _Watcher(receive, exchange, task)
        start_watching = loop.call_later(_WATCH_AFTER_S, watcher.start)
        try:
            status = await self._admitted(exchange, route, adapter)
        except asyncio.CancelledError:
            if not exchange.disconnected:
                raise
            task.uncancel()
            status = "client_closed"
        except GatewayError as exc:
            status = f"{exc.status // 100}xx"
            await exchange.fail(exc)
        except Exception:
            log.exception("request %s failed", request_id.decode("latin-1"))
            status = "5xx"
            await exchange.fail(
                UpstreamUnavailableError("The gateway failed to proxy the request.")
            )
        finally:
            exchange.done = True
            start_watching.cancel()
            watcher.cancel()
            if exchange.caller.admitted:  # tenancy hook: release the quota slot, charge tokens
                await gw.tenancy.finish(exchange.caller, exchange.tokens, loop.time())
        metrics.child(metrics.requests, route.name, adapter or "", self.endpoint, status).inc()
        metrics.child(metrics.latency, route.name, self.endpoint).observe(
            loop.time() - exchange.arrived
        )
        if trace is not None:
            trace.end(status)

    async def _read_body(self, receive: Receive, length: bytes) -> bytes:
        limit = self.gw.settings.max_body_bytes
        if length:
            try:
                declared = int(length)
            except ValueError:
                raise BadRequestError("Content-Length is not a number.") from None
            if declared > limit:
                raise RequestTooLargeError(f"The request body exceeds {limit} bytes.")
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if message["type"] == "http.disconnect":
                raise BadRequestError("The client went away before sending its body.")
            return body
        chunks = [body]
        size = len(body)
        try:
            async with asyncio.timeout(self.gw.settings.body_timeout_s):
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

    async def _admitted(self, exchange: _Exchange, route: ModelRoute, adapter: str | None) -> str:
        """Serve within the gateway's concurrency limit (bounded wait, then 429)."""
        gw = self.gw
        if not gw.admission.try_acquire():
            queued = gw.metrics.child(gw.metrics.queued, route.name, "gateway")
            queued.inc()
            try:
                admitted = await gw.admission.acquire(gw.settings.queue_timeout_s)
            finally:
                queued.dec()
            if not admitted:
                gw.metrics.child(gw.metrics.rejected, "max_concurrent_requests").inc()
                raise OverCapacityError(
                    "The gateway is at its concurrency limit; retry shortly.",
                    retry_after_s=gw.settings.retry_after_s,
                )
        in_flight = gw.metrics.child(gw.metrics.in_flight, route.name)
        in_flight.inc()
        try:
            return await self._serve(exchange, route, adapter)
        finally:
            in_flight.dec()
            gw.admission.release()

    async def _serve(self, exchange: _Exchange, route: ModelRoute, adapter: str | None) -> str:
        """Try replicas until one answers, up to `max_retries` more after the first."""
        gw = self.gw
        settings = gw.settings
        assert exchange.fields is not None
        now = asyncio.get_running_loop().time()
        deadline = now + settings.queue_timeout_s
        hold_until = now + settings.cold_start_hold_s
        tried: tuple[Replica, ...] = ()
        failure: _Failed | None = None
        for attempt in range(settings.max_retries + 1):
            try:
                tenant = exchange.caller.tenant  # tenancy hook: the fair queue's flow
                flow = (tenant.name, tenant.weight) if tenant is not None else ("", 1)
                replica = await gw.pick(
                    route,
                    adapter,
                    exchange.fields.prefix,
                    tried,
                    deadline=deadline,
                    hold_until=hold_until,
                    flow=flow,
                    body=exchange.body,
                )
            except NoReadyReplicaError:
                if failure is None:
                    raise
                break  # nobody else to try: report the last failure
            if exchange.trace is not None:
                exchange.trace.attempt(replica.name)
            try:
                outcome = await self._attempt(exchange, replica, (route.name, adapter or ""))
            finally:
                gw.release(replica, flow[0])
            if isinstance(outcome, str):
                return outcome
            failure = outcome
            gw.failed(replica, outcome.kind)
            tried = (*tried, replica)
            if attempt < settings.max_retries:
                gw.metrics.child(gw.metrics.retries, route.name, outcome.kind.value).inc()
        assert failure is not None
        if failure.kind is Failure.TIMEOUT:
            raise UpstreamTimeoutError("The model did not answer in time.")
        if failure.kind is Failure.CONNECT:
            raise NoReadyReplicaError(
                "No replica of the model could be reached; retry shortly.",
                code="upstream_unreachable",
                retry_after_s=settings.retry_after_s,
            )
        payload = as_openai_error(failure.status, failure.body, self.path)
        await exchange.respond(failure.status, list(failure.headers), payload)
        return "5xx"

    async def _attempt(  # noqa: PLR0912 - one place for every way an attempt can end
        self, exchange: _Exchange, replica: Replica, series: Series
    ) -> str | _Failed:
        """Serve from `replica`: the status class sent, or the failure before the first byte.
        `series` labels the answer's metrics: (model, adapter or "")."""
        gw = self.gw
        assert exchange.fields is not None
        stream = exchange.fields.stream
        response: UpstreamResponse | None = None
        complete = False
        address, line = self._target(replica.url)
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
        attempt: _InFlight | None = None
        try:
            try:
                async with asyncio.timeout(limit) as timeout:
                    attempt = _InFlight(timeout, asyncio.get_running_loop().time())
                    replica.attempts.add(attempt)
                    response = await gw.upstream.post(address, head, body)
                    status = response.status
                    if stream and status == 200:
                        # Hold the headers until the first chunk: a failure before it can
                        # still be retried elsewhere.
                        payload = await response.readany()
                    else:
                        payload = await response.read()
            except TimeoutError:
                return _Failed(Failure.TIMEOUT)
            except (UpstreamConnectError, UpstreamDisconnectedError) as exc:
                return _Failed(Failure.CONNECT, body=str(exc).encode())
            except UpstreamClientError as exc:
                return _Failed(Failure.STATUS, 502, str(exc).encode())
            headers = _response_headers(response, exchange.request_id, gw.draining)
            if status in _RETRYABLE_STATUS:
                return _Failed(Failure.STATUS, status, payload, tuple(headers))
            if not stream or status != 200:
                complete = True
                if status >= 400:
                    payload = as_openai_error(status, payload, self.path)
                await exchange.respond(status, headers, payload)
                gw.succeeded(replica)
                if status == 200:
                    _count_tokens(gw, series, payload, exchange.trace)
                    if exchange.caller.tenant is not None:  # tenancy hook: charge usage
                        exchange.tokens = usage_tokens(payload[-1024:]) or usage_tokens(payload)
                return f"{status // 100}xx"
            if not payload:
                return _Failed(Failure.STATUS, 502, b"the upstream ended its stream before a chunk")
            complete = await self._relay(
                exchange, response, headers, payload, replica, series, attempt
            )
            return "2xx" if complete else "stream_error"
        finally:
            if attempt is not None:
                replica.attempts.discard(attempt)
            if response is not None:
                if complete:
                    response.release()
                else:
                    response.close()

    async def _relay(  # noqa: PLR0917
        self,
        exchange: _Exchange,
        response: UpstreamResponse,
        headers: Headers,
        first: bytes,
        replica: Replica,
        series: Series,
        attempt: _InFlight | None,
    ) -> bool:
        """Pass a stream through from its first chunk; True when it ended well."""
        gw = self.gw
        send = exchange.send
        loop = asyncio.get_running_loop()
        first_at = loop.time()
        gw.metrics.child(gw.metrics.ttft, *series).observe(first_at - exchange.arrived)
        if exchange.trace is not None:
            exchange.trace.responded(200)
            exchange.trace.first_token()
        response.track_data()  # the watchdog's sweeper judges the silences from here on
        if attempt is not None:
            replica.latency.observe(first_at - attempt.sent)
            attempt.response = response
        exchange.started = True
        stripper = exchange.stripper  # tenancy hook: hide the usage event we asked for
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        out = stripper.feed(first) if stripper is not None else first
        await send({"type": "http.response.body", "body": out, "more_body": True})
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
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamClientError as exc:
            stalled = isinstance(exc, UpstreamIdleError)
            kind = Failure.STALL if stalled else Failure.STATUS
            gw.failed(replica, kind)
            message = str(exc) if stalled else "The upstream stream broke mid-way."
            exchange.done = True
            event = sse_error_event(message, code=f"upstream_{kind.value}")
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return False
        exchange.done = True
        rest = stripper.flush() if stripper is not None else b""
        await send({"type": "http.response.body", "body": rest, "more_body": False})
        gw.succeeded(replica)
        tail = last if prev is last else prev + last
        if exchange.caller.tenant is not None:  # tenancy hook: charge usage
            exchange.tokens = usage_tokens(stripper.usage if stripper else tail)
        _count_stream(gw, series, tail, events, loop.time() - first_at, exchange.trace)
        return True


def _response_headers(response: UpstreamResponse, request_id: bytes, close: bool) -> Headers:
    out = [(k, v) for k, v in response.headers if k.lower() not in _RESPONSE_DROP]
    out.append((b"x-request-id", request_id))
    if close:
        out.append(_CLOSE)
    return out


def _count_tokens(gw: Gateway, series: Series, payload: bytes, trace: RequestSpan | None) -> None:
    if trace is not None:
        trace.usage(payload)
    tail = payload[-1024:]
    prompt = _PROMPT_TOKENS.search(tail) or _PROMPT_TOKENS.search(payload)
    completion = _COMPLETION_TOKENS.search(tail) or _COMPLETION_TOKENS.search(payload)
    if prompt is not None:
        gw.metrics.child(gw.metrics.prompt_tokens, *series).inc(int(prompt.group(1)))
    if completion is not None:
        gw.metrics.child(gw.metrics.output_tokens, *series).inc(int(completion.group(1)))


def _count_stream(  # noqa: PLR0917
    gw: Gateway,
    series: Series,
    tail: bytes,
    events: int,
    after_first: float,
    trace: RequestSpan | None,
) -> None:
    if trace is not None:
        trace.usage(tail, streamed_events=events)
    prompt = _PROMPT_TOKENS.search(tail)
    completion = _COMPLETION_TOKENS.search(tail)
    if prompt is not None:
        gw.metrics.child(gw.metrics.prompt_tokens, *series).inc(int(prompt.group(1)))
    # Without usage: one chunk per token, less the closing `[DONE]`.
    tokens = int(completion.group(1)) if completion is not None else max(0, events - 1)
    gw.metrics.child(gw.metrics.output_tokens, *series).inc(tokens)
    if tokens > 1:
        gw.metrics.child(gw.metrics.tpot, *series).observe(after_first / (tokens - 1))
