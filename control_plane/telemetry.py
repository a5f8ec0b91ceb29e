"""OpenTelemetry for the control plane's processes (operators, `hoist up`'s supervisor).

The same rules as the data plane's (`data_plane/telemetry.py`; the import contract keeps
the planes from sharing the module): `control_plane.api.tracing` says from the `OTEL_*`
variables whether tracing is on; `start_tracing` then builds a provider that is passed
to what traces (no global one), or returns None, and then nothing traces.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span

from control_plane.api.tracing import GRPC, TracingConfig, tracing_config

log = logging.getLogger("hoist.telemetry")


def _exporter(config: TracingConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter()
    if config.protocol == GRPC:
        raise ValueError("the operators export OTLP over http/protobuf only")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.traces_endpoint)


def start_tracing(
    service_name: str, environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """A provider exporting as `OTEL_*` says, or None when tracing is off."""
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


def traceparent_of(span: Span) -> str:
    """The W3C `traceparent` naming `span` as the parent of the request it sends."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
