"""Traces of a request through the gateway and the engine (the simulator), exported over
OTLP/HTTP to a receiver on loopback, configured only by the standard OTEL_* variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import data_plane.gateway.tracing
import data_plane.telemetry
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.support.simulator import SimProcess, start_sim_process

pytestmark = pytest.mark.integration

SERVER = 2  # OTLP's SPAN_KIND_SERVER


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def receiver(
    clean_otel_env: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OtlpReceiver]:
    async with otlp_receiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: spans leave soon
        yield running


def _sim(tmp_path: Path) -> Iterator[SimProcess]:
    args = ["--profile", "tiny", "--served-model-name", "base", "--time-scale", "10"]
    sim = start_sim_process(args, log_path=tmp_path / "sim.log")
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def traced_sim(receiver: OtlpReceiver, tmp_path: Path) -> Iterator[SimProcess]:
    """A simulator process that inherits the OTEL_* variables: it traces too."""
    yield from _sim(tmp_path)


@pytest.fixture
def plain_sim(clean_otel_env: None, tmp_path: Path) -> Iterator[SimProcess]:
    yield from _sim(tmp_path)


def _client(gw: RunningGateway, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key="x", max_retries=0, default_headers=headers
    )


def _one(spans: list[ReceivedSpan], service: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service]
    assert len(found) == 1, spans
    return found[0]


async def test_a_callers_trace_continues_through_the_gateway_into_the_engine(
    receiver: OtlpReceiver, traced_sim: SimProcess
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{caller_span}-01"
    async with run_gateway(discovery="static", upstreams=[f"base={traced_sim.urls[0]}"]) as gw:
        assert gw.gateway.tracer is not None
        async with _client(gw, traceparent=traceparent, tracestate="vendor=blue") as client:
            stream = await client.chat.completions.create(
                model="base", messages=[{"role": "user", "content": "hello"}], max_tokens=6,
                stream=True, stream_options={"include_usage": True},
            )  # fmt: skip
            async for _ in stream:
                pass
        async with _client(gw) as client:  # no traceparent: the gateway starts a trace
            await client.completions.create(model="base", prompt="hi", max_tokens=3)

        def both_services(trace: str) -> Any:
            return lambda _: {s.service for s in receiver.trace(trace)} >= {
                "hoist-gateway", "hoist-simulator"
            }  # fmt: skip

        await receiver.wait_for(both_services(trace_id))
        gateway = _one(receiver.trace(trace_id), "hoist-gateway")
        engine = _one(receiver.trace(trace_id), "hoist-simulator")
        assert gateway.parent_span_id == caller_span
        assert gateway.kind == SERVER
        assert gateway.name == "chat base"
        assert gateway.attributes["gen_ai.request.model"] == "base"
        assert gateway.attributes["hoist.model"] == "base"
        assert gateway.attributes["hoist.replica"]
        assert gateway.attributes["http.response.status_code"] == 200
        assert gateway.attributes["hoist.outcome"] == "2xx"
        assert gateway.attributes["hoist.retries"] == 0
        assert gateway.attributes["gen_ai.usage.output_tokens"] == 6
        assert gateway.attributes["gen_ai.usage.input_tokens"] > 0
        assert "first_token" in gateway.events
        assert engine.name == "llm_request"
        assert engine.parent_span_id == gateway.span_id
        assert engine.attributes["gen_ai.usage.completion_tokens"] == 6

        await receiver.wait_for(lambda spans: any(_gateway_root(s) for s in spans))
        root = next(s for s in receiver.spans if _gateway_root(s))
        assert root.name == "text_completion base"
        assert root.trace_id != trace_id
        assert "first_token" not in root.events
        await receiver.wait_for(both_services(root.trace_id))
        assert _one(receiver.trace(root.trace_id), "hoist-simulator").parent_span_id == root.span_id


def _gateway_root(span: ReceivedSpan) -> bool:
    return span.service == "hoist-gateway" and not span.parent_span_id


async def test_tracing_off_touches_no_tracer(
    plain_sim: SimProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no OTEL_* variable set, the hot path builds no span and parses no trace
    context: every way in is made to fail, and requests still succeed."""

    def consulted(*_: object, **__: object) -> None:
        raise AssertionError("tracing is off, yet tracing code ran")

    monkeypatch.setattr(data_plane.gateway.tracing.RequestSpan, "__init__", consulted)
    monkeypatch.setattr(data_plane.gateway.tracing, "extract_context", consulted)
    monkeypatch.setattr(data_plane.telemetry, "extract_context", consulted)
    monkeypatch.setattr("opentelemetry.trace.get_tracer", consulted)
    monkeypatch.setattr("opentelemetry.sdk.trace.TracerProvider.get_tracer", consulted)
    monkeypatch.setattr("opentelemetry.sdk.trace.Tracer.start_span", consulted)
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    async with run_gateway(discovery="static", upstreams=[f"base={plain_sim.urls[0]}"]) as gw:
        assert gw.gateway.tracer is None
        async with _client(gw, traceparent=traceparent) as client:
            reply = await client.chat.completions.create(
                model="base", messages=[{"role": "user", "content": "hello"}], max_tokens=2
            )
            assert reply.usage is not None
            assert reply.usage.completion_tokens == 2
            stream = await client.completions.create(
                model="base", prompt="hi", max_tokens=3, stream=True
            )
            chunks = [chunk async for chunk in stream]
            assert chunks
