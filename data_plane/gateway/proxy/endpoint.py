"""The proxy per endpoint: one request from its headers to its metrics.

Headers (the ones to pass on, the request id, the caller's key), the bounded body, the
routing fields and the tenancy checks; then admission (the gateway's concurrency limit)
and the retry loop over replicas, each attempt in `attempt.py`.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from data_plane.gateway.engine_errors import as_openai_error
from data_plane.gateway.errors import (
    GatewayError,
    ModelNotFoundError,
    NoReadyReplicaError,
    OverCapacityError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from data_plane.gateway.fleet import ModelRoute, Replica
from data_plane.gateway.health import Failure
from data_plane.gateway.metrics import UNKNOWN
from data_plane.gateway.proxy.asgi import Receive, Scope, Send
from data_plane.gateway.proxy.attempt import try_replica
from data_plane.gateway.proxy.conn import AsgiConn, ClientConn
from data_plane.gateway.proxy.exchange import (
    REQUEST_DROP,
    TRACED_DROP,
    Exchange,
    Failed,
    RequestIds,
)
from data_plane.gateway.request_fields import Endpoint, check_token_bound, parse_request
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.upstream import UsageStripper
from data_plane.gateway.tracing import RequestSpan
from data_plane.gateway.upstream_client import Address

log = logging.getLogger("hoist.gateway.proxy")


class ProxyEndpoint:
    def __init__(self, gateway: Gateway, endpoint: Endpoint, upstream_path: str) -> None:
        self.gw = gateway
        self.endpoint = endpoint
        self.path = upstream_path
        self._ids = RequestIds()
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as an ASGI app."""
        await self.serve(AsgiConn(scope, receive, send))

    async def serve(self, conn: ClientConn) -> None:  # noqa: PLR0912, PLR0915 - the hot path, kept flat on purpose
        """One request on its client connection (`http_protocol.py` calls this directly)."""
        gw = self.gw
        metrics = gw.metrics
        loop = asyncio.get_running_loop()
        request_id = auth = length = traceparent = tracestate = b""
        forward: list[bytes] = []
        tracer = gw.tracer
        drop = REQUEST_DROP if tracer is None else TRACED_DROP
        for key, value in conn.headers:
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
        exchange = Exchange(conn, request_id, loop.time(), b"".join(forward), trace=trace)
        exchange.draining = gw.draining
        try:
            caller = exchange.caller = gw.tenancy.authenticate(auth)  # tenancy hook: 401
            settings = gw.settings
            exchange.body = await conn.body(
                length, settings.max_body_bytes, settings.body_timeout_s
            )
            fields = parse_request(exchange.body, self.endpoint, gw.settings.prefix_chars)
            exchange.fields = fields
            if trace is not None:
                trace.asked_for(fields.model)
            tenant = caller.tenant
            cap = gw.settings.max_request_tokens
            if tenant is not None and tenant.max_request_tokens is not None:
                cap = tenant.max_request_tokens
            check_token_bound(fields, cap, gw.settings.assumed_max_tokens)
            try:
                route, adapter = gw.fleet.resolve(fields.model)
            except ModelNotFoundError:  # maybe only new to this worker: read the source again
                await gw.reads.since(exchange.arrived)
                route, adapter = gw.fleet.resolve(fields.model)
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
            metrics.add(metrics.requests, UNKNOWN, "", self.endpoint, status_class)
            if trace is not None:
                trace.end(status_class)
            return
        task = exchange.task = asyncio.current_task(loop)
        assert task is not None
        conn.watch(exchange)
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
            conn.unwatch()
            if exchange.caller.admitted:  # tenancy hook: release the quota slot, charge tokens
                await gw.tenancy.finish(exchange.caller, exchange.tokens, loop.time())
        metrics.add(metrics.requests, route.name, adapter or "", self.endpoint, status)
        metrics.observe(metrics.latency, loop.time() - exchange.arrived, route.name, self.endpoint)
        if trace is not None:
            trace.end(status)

    async def _admitted(self, exchange: Exchange, route: ModelRoute, adapter: str | None) -> str:
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
        metrics = gw.metrics
        metrics.add(metrics.in_flight, route.name)
        try:
            return await self._serve(exchange, route, adapter)
        finally:
            metrics.add(metrics.in_flight, route.name, amount=-1)
            gw.admission.release()

    async def _serve(self, exchange: Exchange, route: ModelRoute, adapter: str | None) -> str:
        """Try replicas until one answers, up to `max_retries` more after the first."""
        gw = self.gw
        settings = gw.settings
        assert exchange.fields is not None
        now = asyncio.get_running_loop().time()
        deadline = now + settings.queue_timeout_s
        hold_until = now + settings.cold_start_hold_s
        tried: tuple[Replica, ...] = ()
        failure: Failed | None = None
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
                outcome = await try_replica(
                    gw,
                    exchange,
                    replica,
                    (route.name, adapter or ""),
                    self._target(replica.url),
                    self.path,
                )
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
