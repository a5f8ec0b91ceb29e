"""The watchdog through real HTTP: a replica much slower than its peers leaves rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import openai
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway
from tests.support.waiting import wait_until


@pytest.fixture
async def engines() -> AsyncIterator[list[FakeVllm]]:
    fleet = [FakeVllm("tiny") for _ in range(3)]
    for e in fleet:
        await e.start()
    yield fleet
    for e in fleet:
        await e.stop()


async def test_a_latency_outlier_is_ejected_and_the_others_serve(engines: list[FakeVllm]) -> None:
    slow = engines[2]
    slow.token_delay_s = 0.6  # its first chunk comes 0.6 s late; the others' at once
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={','.join(e.url for e in engines)}"],
            outlier_min_samples=3,
            outlier_min_gap_s=0.3,
            stall_sweep_interval_s=0.05,
            eject_cooldown_s=1.0,
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        replica = next(r for r in gw.gateway.fleet.replicas() if r.url == slow.url)

        async def one(i: int) -> str:
            stream = await client.completions.create(
                model="tiny", prompt=f"prompt {i}", max_tokens=1, stream=True
            )
            return "".join([c.choices[0].text async for c in stream])

        i = 0
        while not replica.health.ejected:
            assert i < 200, "the slow replica was never ejected"
            await asyncio.gather(*(one(i + k) for k in range(6)))
            i += 6
        served = slow.requests
        assert all(r == "t0 " for r in await asyncio.gather(*(one(1000 + k) for k in range(12))))
        assert slow.requests == served  # out of rotation for its cool-down
        await wait_until(lambda: replica.health.available(asyncio.get_running_loop().time()), 10)
