"""An engine told to stop (SIGTERM, as the kubelet does after the pod's preStop) drains:
it takes no new connection, and the streams in flight run to their end."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.simulator import running_sim_process


async def test_sigterm_finishes_streams_in_flight_and_refuses_new_work(tmp_path: Path) -> None:
    with running_sim_process(["--served-model-name", "sim"], log_path=tmp_path / "sim.log") as sim:
        async with openai.AsyncOpenAI(
            base_url=sim.urls[0] + "/v1", api_key="x", max_retries=0, timeout=60
        ) as client:
            stream = await client.completions.create(
                model="sim", prompt="drain me", max_tokens=120, stream=True,
                extra_body={"ignore_eos": True},
            )  # fmt: skip
            chunks = 0
            async for _ in stream:
                chunks += 1
                if chunks == 3:
                    sim.process.send_signal(signal.SIGTERM)  # mid-stream
            assert chunks >= 100  # the whole stream, not the first few chunks
            async with httpx.AsyncClient(timeout=5) as fresh:
                with pytest.raises(httpx.ConnectError):
                    await fresh.get(sim.urls[0] + "/health")  # no longer listening
        assert sim.process.wait(timeout=30) == 0
