"""Fair sharing through the real gateway and a simulated engine process: a quiet tenant
is admitted at once while a noisy one saturates the fleet (bounded overcommit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.gateway import RunningGateway, run_gateway
from tests.support.simulator import SimProcess, running_sim_process
from tests.support.tenants import write_tenant_files
from tests.support.waiting import wait_until

KEYS = {"noisy": "sk-share-noisy-000000001", "quiet": "sk-share-quiet-000000002"}
CAP = 2
LONG = 4000  # tokens: a noisy answer holds its slot far longer than the test runs


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    # the engine runs more sequences than the gateway's cap (as vLLM's max_num_seqs does)
    args = ["--served-model-name", "sim", "--max-num-seqs", "16"]
    with running_sim_process(args, log_path=log) as process:
        yield process


def _sample(gw: RunningGateway, name: str, labels: dict[str, str]) -> float:
    return gw.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def _queued(gw: RunningGateway) -> float:
    return _sample(gw, "gateway_queued_requests", {"model": "sim", "reason": "replica_cap"})


def _in_flight(gw: RunningGateway) -> int:
    return sum(r.in_flight for r in gw.gateway.fleet.models["sim"].replicas)


async def _drain(client: openai.AsyncOpenAI, prompt: str, max_tokens: int) -> None:
    stream = await client.chat.completions.create(
        model="sim",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        stream=True,
    )
    async for _ in stream:
        pass


@pytest.mark.parametrize(
    ("fair", "overcommit", "admitted"),
    [(True, 2, True), (True, 0, False), (False, 2, False)],
    ids=["fair-sharing", "no-overcommit", "first-come-first-served"],
)
async def test_a_quiet_tenant_is_admitted_while_a_noisy_one_saturates_the_fleet(
    sim: SimProcess, tmp_path: Path, fair: bool, overcommit: int, admitted: bool
) -> None:
    tenants, keys = write_tenant_files(tmp_path, KEYS)
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"sim={sim.urls[0]}"],
            tenants_files=[tenants],
            tenant_keys_file=keys,
            per_replica_max_in_flight=CAP,
            queue_timeout_s=60,
            tenant_fair_queuing=fair,
            tenant_overcommit=overcommit,
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEYS["noisy"], max_retries=0) as n,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEYS["quiet"], max_retries=0) as q,
    ):
        burst = [asyncio.create_task(_drain(n, f"noisy {i}", LONG)) for i in range(2 * CAP)]
        try:
            # alone, the noisy tenant gets exactly the cap (no overcommit), the rest waits
            await wait_until(lambda: _in_flight(gw) == CAP and _queued(gw) == CAP, 30)
            quiet = asyncio.create_task(_drain(q, "quiet", 2))
            if admitted:
                async with asyncio.timeout(30):  # a hang guard, not a latency assertion
                    await quiet
                # served over the cap while the burst still held every slot and waited
                assert _queued(gw) == CAP
                assert _in_flight(gw) == CAP
                assert _sample(gw, "gateway_tenant_queue_seconds_count", {"tenant": "quiet"}) == 0
            else:
                await wait_until(lambda: _queued(gw) == CAP + 1, 30)  # behind the burst
                assert not quiet.done()
                assert _in_flight(gw) == CAP
                quiet.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await quiet
        finally:
            for task in burst:
                task.cancel()
            await asyncio.gather(*burst, return_exceptions=True)
