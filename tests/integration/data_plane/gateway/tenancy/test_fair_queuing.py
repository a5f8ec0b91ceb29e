"""Fair queuing through the real gateway: a quiet tenant is not stuck behind a burst."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import orjson
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway
from tests.support.tenants import write_tenant_files
from tests.support.waiting import wait_until

KEYS = {"noisy": "sk-fair-noisy-000000001", "quiet": "sk-fair-quiet-000000002"}


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", tokens=3, token_delay_s=0.05)
    await e.start()
    yield e
    await e.stop()


@pytest.mark.parametrize(("fair", "positions"), [(True, {1, 2}), (False, {5})])
async def test_the_quiet_tenant_is_served_next(
    engine: FakeVllm, tmp_path: Path, fair: bool, positions: set[int]
) -> None:
    """Five noisy requests, one slot: with fair queuing the quiet request is next in line
    (or second: start-time tags tie with the noisy head); first come, first served: last."""
    tenants, keys = write_tenant_files(tmp_path, KEYS)
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"llama={engine.url}"],
            tenants_files=[tenants],
            tenant_keys_file=keys,
            per_replica_max_in_flight=1,
            queue_timeout_s=30,
            tenant_fair_queuing=fair,
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEYS["noisy"], max_retries=0) as n,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEYS["quiet"], max_retries=0) as q,
    ):

        async def ask(client: openai.AsyncOpenAI, prompt: str) -> None:
            await client.completions.create(model="llama", prompt=prompt, max_tokens=3)

        registry = gw.gateway.metrics.registry

        def arrived() -> float:
            labels = {"model": "llama", "reason": "replica_cap"}
            waiting = registry.get_sample_value("gateway_queued_requests", labels) or 0.0
            return len(engine.bodies) + waiting

        burst = []
        for i in range(5):  # one at a time, so the queue holds them in this order
            burst.append(asyncio.create_task(ask(n, f"noisy {i}")))
            await wait_until(lambda i=i: arrived() == i + 1)
        await ask(q, "quiet")
        await asyncio.gather(*burst)
    prompts = [orjson.loads(b)["prompt"] for b in engine.bodies]
    assert prompts.index("quiet") in positions, prompts
