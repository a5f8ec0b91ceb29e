"""The gateway in front of the real engine simulator (vLLM's API and metrics), via the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from data_plane.inference.simulator.runner import Fleet
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.simulator import sim_fleet
from tests.support.waiting import wait_until


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with sim_fleet(
        replicas=2, profile="tiny", served_model_name="base", max_loras=2,
        accept_missing_lora_paths=True, time_scale=10.0,
    ) as running:  # fmt: skip
        async with aiohttp.ClientSession() as http:
            body = {"lora_name": "sql-lora", "lora_path": "/adapters/sql-lora"}
            async with http.post(running.urls[1] + "/v1/load_lora_adapter", json=body) as resp:
                assert resp.status == 200, await resp.text()
        yield running


@pytest.fixture
async def gw(fleet: Fleet) -> AsyncIterator[RunningGateway]:
    upstream = f"base={fleet.urls[0]},{fleet.urls[1]}#sql-lora"
    async with run_gateway(
        discovery="static", upstreams=[upstream], load_poll_interval_s=0.05
    ) as running:
        yield running


async def test_chat_stream_and_adapter_through_the_gateway(
    gw: RunningGateway, fleet: Fleet
) -> None:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client:
        reply = await client.chat.completions.create(
            model="base", messages=[{"role": "user", "content": "hello"}], max_tokens=5
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens == 5
        stream = await client.completions.create(
            model="base", prompt="hello", max_tokens=4, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        usage = None
        async for chunk in stream:
            usage = chunk.usage or usage
        assert usage is not None
        assert usage.completion_tokens == 4
        for _ in range(3):
            tuned = await client.chat.completions.create(
                model="sql-lora", messages=[{"role": "user", "content": "select"}], max_tokens=2
            )
            assert tuned.model == "sql-lora"
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(
                model="base", messages=[{"role": "user", "content": "x"}], max_tokens=-1
            )


async def test_the_engines_queue_and_adapters_are_read_from_its_metrics(gw: RunningGateway) -> None:
    replicas = list(gw.gateway.fleet.replicas())
    await wait_until(lambda: all(r.running_adapters is not None for r in replicas))
    assert all(r.waiting == 0 for r in replicas)
