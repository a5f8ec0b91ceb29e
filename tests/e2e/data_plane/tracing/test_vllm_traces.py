"""The real vLLM (CPU, tiny model) exports its own span, as the engine launcher starts it
when tracing is on, a child of the `traceparent` it was sent (the gateway's)."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import httpx
import pytest

from control_plane.api.tracing import engine_tracing
from tests.support.otlp_receiver import otlp_receiver
from tests.support.tiny_model import build_tiny_model_with_adapters
from tests.support.vllm_server import start_vllm, vllm_installed

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed"),
]


async def test_vllm_exports_a_child_of_the_traceparent_it_was_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    model = await asyncio.to_thread(build_tiny_model_with_adapters, tmp_path / "tiny", ["alpha"])
    async with otlp_receiver() as receiver:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        argv, env = engine_tracing(otel)  # what engine_api adds to vLLM's launch
        assert argv[0] == "--otlp-traces-endpoint"
        server = await asyncio.to_thread(
            start_vllm, model.path, log_path=tmp_path / "vllm.log",
            extra_args=argv, extra_env={**otel, **env, "OTEL_BSP_SCHEDULE_DELAY": "100"},
        )  # fmt: skip
        try:
            trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
            async with httpx.AsyncClient(timeout=120) as client:
                answer = await client.post(
                    server.base_url + "/v1/completions",
                    json={"model": "tiny", "prompt": "hello", "max_tokens": 4},
                    headers={"traceparent": f"00-{trace_id}-{parent}-01"},
                )
            assert answer.status_code == 200, answer.text
            spans = await receiver.wait_for(lambda _: bool(receiver.trace(trace_id)), 60)
        finally:
            await asyncio.to_thread(server.stop)
    (span,) = [s for s in spans if s.trace_id == trace_id]
    assert span.service == "vllm"
    assert span.parent_span_id == parent
    assert span.name == "llm_request"
    assert span.attributes["gen_ai.usage.completion_tokens"] == 4
