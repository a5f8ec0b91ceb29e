"""Two gateways on one real Redis share one per-replica cap and one set of fair shares.

Two gateway replicas (`run_gateway` twice in the test's loop, as two Deployment replicas:
each configured with the whole per-replica cap) in front of one engine. The noisy tenant
fills the engine through gateway A, then sends as many again through gateway B, and the
quiet tenant sends one request through B. Sharing through Redis: the engine never holds
more than the cap, and the quiet request takes the first slot that frees (the noisy tenant,
over its share, leaves it); alone (no Redis), each gateway grants the noisy tenant the
whole cap, twice the fleet's in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.redis_server import running_redis

KEYS = {"quiet": "sk-share-quiet-0123456789", "noisy": "sk-share-noisy-0123456789"}
TENANTS = "".join(
    f"---\napiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {t}}}\n"
    for t in KEYS
)
CAP = 4
TOKENS, TOKEN_DELAY_S = 16, 0.25
"""Each answer takes TOKENS x TOKEN_DELAY_S = 4 s: long beside the 50 ms sync."""
STAGGER_S = 0.3
"""Between A's requests: when the first ends the others still hold all the cap but one."""
WITHIN_S = 20.0
"""Generous bound for what a loaded 2-core machine does in a few sync intervals."""


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", tokens=TOKENS, token_delay_s=TOKEN_DELAY_S)
    await e.start()
    yield e
    await e.stop()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    tenants, keys = tmp_path / "tenants.yaml", tmp_path / "keys.txt"
    tenants.write_text(TENANTS)
    keys.write_text("".join(f"{t}: {k}\n" for t, k in KEYS.items()))
    return tenants, keys


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with running_redis(tmp_path) as url:
        yield url


async def _ask(gw: RunningGateway, tenant: str) -> str:
    async with openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key=KEYS[tenant], max_retries=0, timeout=120
    ) as client:
        done = await client.completions.create(model="llama", prompt=tenant, max_tokens=TOKENS)
    return done.choices[0].text


async def _until(check: object, what: str) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {WITHIN_S:.0f} s: {what}"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def _peak(engine: FakeVllm) -> AsyncIterator[list[int]]:
    """The most requests the engine held at once while the block ran."""
    peak = [0]

    async def watch() -> None:
        while True:
            peak[0] = max(peak[0], engine.in_flight)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(watch())
    try:
        yield peak
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("shared", [True, False], ids=["shared-redis", "alone"])
async def test_two_gateways_give_a_tenant_its_share_not_twice_it(
    engine: FakeVllm, files: tuple[Path, Path], tmp_path: Path, shared: bool
) -> None:
    settings = {
        "discovery": "static",
        "upstreams": [f"llama={engine.url}"],
        "tenants_files": [files[0]],
        "tenant_keys_file": files[1],
        "per_replica_max_in_flight": CAP,
        "tenant_overcommit": 0,
        "queue_timeout_s": 120,
        # About sharing, not a slow Redis: a stall of the test's loop past the default
        # 0.25 s (a loaded machine) makes both gateways decide alone, as designed
        # (tests/faults/test_share_sync_outage.py), and the engine then holds twice the cap.
        "tenant_redis_timeout_s": 2.0,
    }
    with contextlib.ExitStack() as stack:
        if shared:
            settings["tenant_redis_url"] = stack.enter_context(running_redis(tmp_path))
        async with (
            run_gateway(**settings) as a,
            run_gateway(**settings) as b,
            _peak(engine) as peak,
        ):
            first = []
            for n in range(1, CAP + 1):  # staggered: they end one by one
                first.append(asyncio.create_task(_ask(a, "noisy")))
                await _until(lambda n=n: engine.in_flight == n, "gateway A fills the engine")
                await asyncio.sleep(STAGGER_S)
            replica = next(iter(b.gateway.fleet.replicas()))
            if shared:  # B has read A's report: nothing left of the cap
                await _until(lambda: replica.cap_left == 0, "gateway B sees A's requests")
            second = [asyncio.create_task(_ask(b, "noisy")) for _ in range(CAP)]
            await _until(lambda: len(engine.bodies) >= CAP * 2 or _queued(b) == CAP, "B queues")
            quiet = asyncio.create_task(_ask(b, "quiet"))
            answers = await asyncio.gather(*first, *second, quiet)
    assert all(answers)  # every request answered
    order = [body.decode() for body in engine.bodies]
    if shared:
        assert peak[0] == CAP
        # the first slot freed went to the quiet tenant, not to noisy's queued requests
        assert order.index(next(o for o in order if '"quiet"' in o)) == CAP
    else:
        assert peak[0] == 2 * CAP  # each gateway granted the whole cap


def _queued(gw: RunningGateway) -> float:
    registry = gw.gateway.metrics.registry
    value = registry.get_sample_value(
        "gateway_queued_requests", {"model": "llama", "reason": "replica_cap"}
    )
    return float(value or 0.0)
