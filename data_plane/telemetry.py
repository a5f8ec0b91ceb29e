"""OpenTelemetry for the data plane's processes: a tracer provider when `OTEL_*` asks for one.

`start_tracing(service)` returns None when tracing is off (`control_plane.api.tracing`
says when), and then nothing else of OpenTelemetry is touched: callers keep the None and
skip their spans. When on, spans go through a BatchSpanProcessor (its schedule from
`OTEL_BSP_*`) to the OTLP exporter (endpoint, headers, timeout from `OTEL_EXPORTER_OTLP_*`);
the sampler comes from `OTEL_TRACES_SAMPLER`, the resource from `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES`. The provider is not installed globally (no singletons): each
process passes its tracer to what traces, and calls `stop_tracing` on the way out, which
exports what is left.

W3C trace context crosses processes as the `traceparent` / `tracestate` headers:
`extract_context` reads them, `traceparent_of` writes a span's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from control_plane.api.tracing import GRPC, TracingConfig, tracing_config

log = logging.getLogger("hoist.telemetry")

_W3C = TraceContextTextMapPropagator()


def _exporter(config: TracingConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter()
    if config.protocol == GRPC:  # vLLM's dependencies bring it; Hoist's own do not
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as Grpc,
            )
        except ImportError:
            raise ValueError(
                "OTLP over grpc needs opentelemetry-exporter-otlp-proto-grpc; "
                "or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
            ) from None
        return Grpc(endpoint=config.traces_endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.traces_endpoint)


def start_tracing(
    service_name: str, environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """A provider exporting as `OTEL_*` says (`service_name` unless OTEL_SERVICE_NAME is
    set), or None when tracing is off. Raises ValueError for an exporter it cannot build."""
    env = os.environ if environ is None else environ
    config = tracing_config(env)
    if config is None:
        return None
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), shutdown_on_exit=False
    )
    provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
    log.info("tracing on: %s spans of %s to %s", config.exporter, name, config.traces_endpoint)
    return provider


def stop_tracing(provider: TracerProvider | None) -> None:
    """Export the spans still queued and stop (blocking: bounded by the exporter's timeout)."""
    if provider is not None:
        provider.shutdown()


@asynccontextmanager
async def tracing(service_name: str) -> AsyncIterator[TracerProvider | None]:
    """`start_tracing` for the block; its last spans are exported off the event loop."""
    provider = start_tracing(service_name)
    try:
        yield provider
    finally:
        await asyncio.to_thread(stop_tracing, provider)


def extract_context(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The caller's trace context from its W3C headers; None when absent or malformed
    (the span then starts a new trace)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _W3C.extract(carrier)


def traceparent_of(span: Span) -> tuple[str, str]:
    """The W3C `traceparent` and `tracestate` values naming `span` as the parent."""
    ctx = span.get_span_context()
    parent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    return parent, ctx.trace_state.to_header()
