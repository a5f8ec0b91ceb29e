"""Traces of adapter loads: the operator's client span, the sidecar's request, fetch and
load spans beneath it, exported over OTLP/HTTP to a receiver on loopback; never a secret."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from control_plane.lora_manager.sidecar_client import SidecarClient, SidecarRefusedError
from control_plane.telemetry import start_tracing, stop_tracing
from tests.integration.data_plane.inference.sidecar_runtime.conftest import (
    StandInEngine,
    make_adapter,
    run_sidecar,
)
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

pytestmark = pytest.mark.integration

CLIENT, SERVER = 3, 2  # OTLP's span kinds


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OtlpReceiver]:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    async with otlp_receiver() as running:
        yield running


@pytest.fixture
async def engine() -> AsyncIterator[StandInEngine]:
    stand_in = StandInEngine()
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stand_in.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


def _named(spans: list[ReceivedSpan], service: str, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.service == service and s.name == name]


async def test_an_adapter_load_is_traced_from_the_operator_through_the_sidecar(
    receiver: OtlpReceiver, engine: StandInEngine, tmp_path: Path
) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    source = make_adapter(tmp_path / "sql", b"x" * 1000)
    secret = "https://user:hunter2@example.invalid/a.tgz?X-Amz-Signature=hunter2"
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log", env=otel) as sidecar:
        provider = start_tracing("hoist-operator", otel)
        assert provider is not None
        try:
            async with aiohttp.ClientSession() as session:
                client = SidecarClient(
                    session, timeout_seconds=10, tracer=provider.get_tracer("test")
                )
                loaded = await client.load(sidecar.url, "sql", str(source), None)
                assert loaded.phase.value == "Loaded"
                with pytest.raises(SidecarRefusedError):
                    await client.load(sidecar.url, "leaky", secret, None)
        finally:
            await asyncio.to_thread(stop_tracing, provider)

        def complete(spans: list[ReceivedSpan]) -> bool:
            return (
                len(_named(spans, "hoist-operator", "adapter.load")) == 2
                and len(_named(spans, "hoist-sidecar", "PUT /adapters/{name}")) == 2
                and bool(_named(spans, "hoist-sidecar", "adapter.load"))
            )

        spans = await receiver.wait_for(complete)
    ours = next(s for s in _named(spans, "hoist-operator", "adapter.load")
                if s.attributes["hoist.adapter"] == "sql")  # fmt: skip
    assert ours.kind == CLIENT
    assert ours.attributes["hoist.outcome"] == "Loaded"
    assert ours.attributes["hoist.adapter.source_scheme"] == "file"
    request = next(s for s in _named(spans, "hoist-sidecar", "PUT /adapters/{name}")
                   if s.parent_span_id == ours.span_id)  # fmt: skip
    assert request.kind == SERVER
    assert request.trace_id == ours.trace_id
    fetch = _named(spans, "hoist-sidecar", "adapter.fetch")
    load = _named(spans, "hoist-sidecar", "adapter.load")
    assert [s.parent_span_id for s in fetch] == [request.span_id]
    assert [s.parent_span_id for s in load] == [request.span_id]
    assert fetch[0].attributes["hoist.adapter.bytes"] >= 1000
    assert fetch[0].attributes["hoist.outcome"] == "ok"
    assert load[0].attributes["hoist.outcome"] == "ok"

    refused = next(s for s in _named(spans, "hoist-operator", "adapter.load")
                   if s.attributes["hoist.adapter"] == "leaky")  # fmt: skip
    assert refused.attributes["hoist.adapter.source"] == "https://example.invalid/a.tgz"
    assert refused.attributes["hoist.outcome"] != "Loaded"
    for span in spans:  # neither the password nor the signature reached any span
        assert "hunter2" not in repr(span), span
