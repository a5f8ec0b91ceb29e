"""The gateway's request span (data_plane/gateway/tracing.py) and when the gateway has one."""

from __future__ import annotations

import re

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from control_plane.api.tracing import tenant_hash
from data_plane.gateway.__main__ import build
from data_plane.gateway.request_fields import Endpoint
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.settings import GatewaySettings
from data_plane.gateway.tracing import RequestSpan
from data_plane.telemetry import stop_tracing

pytestmark = pytest.mark.unit

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exported: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider


def _settings() -> GatewaySettings:
    return GatewaySettings(discovery="static", upstreams=["m=http://127.0.0.1:9"])


def test_without_otel_variables_the_gateway_has_no_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    gateway: Gateway = build(_settings()).app.state.gateway
    assert gateway.tracer is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    traced: Gateway = build(_settings()).app.state.gateway
    assert traced.tracer is not None
    stop_tracing(traced._tracing)  # the provider's export thread ends here


def test_a_span_joins_the_callers_trace_and_parents_the_engine(
    provider: TracerProvider, exported: InMemorySpanExporter
) -> None:
    span = RequestSpan(provider.get_tracer("t"), Endpoint.CHAT, CALLER.encode(), b"k=v")
    header = span.header().decode()
    span.asked_for("sql-lora")
    span.routed("base", "sql-lora", "acme")
    span.attempt("r0")
    span.attempt("r1")
    span.responded(200)
    span.first_token()
    span.usage(b'{"usage":{"prompt_tokens":7,"completion_tokens":3}}')
    span.end("2xx")
    (done,) = exported.get_finished_spans()
    assert done.context.trace_id == int(CALLER.split("-")[1], 16)
    assert done.parent is not None
    assert done.parent.span_id == int(CALLER.split("-")[2], 16)
    assert re.fullmatch(
        rf"traceparent: 00-{CALLER.split('-')[1]}-{done.context.span_id:016x}-01\r\n"
        r"tracestate: k=v\r\n",
        header,
    )
    assert done.name == "chat sql-lora"
    assert dict(done.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "http.request.method": "POST",
        "gen_ai.request.model": "sql-lora",
        "hoist.model": "base",
        "hoist.adapter": "sql-lora",
        "hoist.tenant": tenant_hash("acme"),
        "hoist.replica": "r1",
        "hoist.retries": 1,
        "hoist.outcome": "2xx",
        "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3,
    }
    assert [e.name for e in done.events] == ["first_token"]


@pytest.mark.parametrize(
    "traceparent",
    [
        pytest.param(b"", id="absent"),
        pytest.param(b"00-xyz-b7ad6b7169203331-01", id="malformed"),
        pytest.param(b"00-00000000000000000000000000000000-b7ad6b7169203331-01", id="zero-trace"),
    ],
)
def test_without_a_valid_traceparent_the_gateway_starts_a_trace(
    provider: TracerProvider, exported: InMemorySpanExporter, traceparent: bytes
) -> None:
    span = RequestSpan(provider.get_tracer("t"), Endpoint.COMPLETIONS, traceparent, b"")
    span.usage(b"data: {}\n\ndata: {}\n\ndata: [DONE]\n\n", streamed_events=3)
    span.end("5xx")
    (done,) = exported.get_finished_spans()
    assert done.parent is None
    assert done.name == "text_completion"
    assert done.attributes is not None
    assert done.attributes["gen_ai.usage.output_tokens"] == 2
    assert not done.status.is_ok


def test_an_unsampled_request_still_tells_the_engine_not_to_sample() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    span = RequestSpan(provider.get_tracer("t"), Endpoint.CHAT, b"", b"")
    flags = span.header().decode().strip().rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0  # W3C: the sampled bit is clear
    span.end("2xx")
    assert not exported.get_finished_spans()
