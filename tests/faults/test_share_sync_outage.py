"""The shared admission state's Redis (a real redis-server) frozen, killed, and back.

Two gateways share one per-replica cap through Redis. When Redis stops answering (frozen
with SIGSTOP: connections open, no replies; or killed), each gateway decides alone within
a sync interval plus the call's timeout, as without Redis (its own cap, its own tenants),
says so in `gateway_share_sync_up` and a log line, and serves requests meanwhile. When Redis returns, both count each other's requests again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from data_plane.gateway.tenancy.breaker import BreakerPolicy
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.redis_server import redis_process

KEYS = {"noisy": "sk-sync-noisy-0123456789"}
"""One tenant: the test is about the cap (a second one, active, would keep a reserve)."""
TENANTS = "".join(
    f"---\napiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {t}}}\n"
    for t in KEYS
)
CAP = 4
LONG_TOKENS, TOKEN_DELAY_S = 16, 0.25
"""A held request lasts 4 s; a short one (1 token) 0.25 s."""
STORE_TIMEOUT_S = 1.0
"""Each Redis call's bound (as in test_redis_outage.py: a loaded machine stalls past 250 ms)."""
BREAKER = BreakerPolicy()
RECOVERY_S = BREAKER.max_open_s * 2 + 10
"""Generous: the breaker's open periods bound when the first successful sync comes."""
DETECT_S = 15.0
"""Generous bound for a sync interval plus one timed-out call on a loaded 2-core machine."""


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", tokens=LONG_TOKENS, token_delay_s=TOKEN_DELAY_S)
    await e.start()
    yield e
    await e.stop()


async def _ask(gw: RunningGateway, tenant: str, tokens: int) -> int:
    async with openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key=KEYS[tenant], max_retries=0, timeout=120
    ) as client:
        try:
            await client.completions.create(model="llama", prompt=tenant, max_tokens=tokens)
        except openai.APIStatusError as exc:
            return exc.status_code
    return 200


async def _until(check: Callable[[], bool], what: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s:.0f} s: {what}"
        await asyncio.sleep(0.01)


def _sample(gw: RunningGateway, name: str, labels: dict[str, str] | None = None) -> float:
    return float(gw.gateway.metrics.registry.get_sample_value(name, labels or {}) or 0.0)


def _errors(gw: RunningGateway) -> float:
    return sum(
        _sample(gw, "gateway_share_sync_errors_total", {"kind": k}) for k in ("timeout", "error")
    )


async def _b_sees_a_fill_the_engine(
    a: RunningGateway, b: RunningGateway, engine: FakeVllm
) -> list[asyncio.Task[int]]:
    held = [asyncio.create_task(_ask(a, "noisy", LONG_TOKENS)) for _ in range(CAP)]
    await _until(lambda: engine.in_flight == CAP, "A fills the engine", DETECT_S)
    replica = next(iter(b.gateway.fleet.replicas()))
    await _until(lambda: replica.cap_left == 0, "B counts A's requests", DETECT_S)
    assert _sample(b, "gateway_share_sync_up") == 1
    return held


@pytest.mark.parametrize("fault", ["frozen", "killed"])
async def test_share_sync_outage_decides_alone_and_recovers(
    engine: FakeVllm, tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "hoist.gateway.tenancy")
    tenants, keys = tmp_path / "tenants.yaml", tmp_path / "keys.txt"
    tenants.write_text(TENANTS)
    keys.write_text("".join(f"{t}: {k}\n" for t, k in KEYS.items()))
    with redis_process(tmp_path) as (url, server):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        settings: dict[str, Any] = {
            "discovery": "static",
            "upstreams": [f"llama={engine.url}"],
            "tenants_files": [tenants],
            "tenant_keys_file": keys,
            "per_replica_max_in_flight": CAP,
            "tenant_overcommit": 0,
            "queue_timeout_s": 120,
            "tenant_redis_url": url,
            "tenant_redis_timeout_s": STORE_TIMEOUT_S,
        }
        async with run_gateway(**settings) as a, run_gateway(**settings) as b:
            held = await _b_sees_a_fill_the_engine(a, b, engine)
            replica = next(iter(b.gateway.fleet.replicas()))

            if fault == "frozen":
                os.kill(server.pid, signal.SIGSTOP)  # accepts connections, answers nothing
            else:
                server.kill()
                server.wait(10)
            errors_before = _errors(b)
            await _until(
                lambda: replica.cap_left is None and _sample(b, "gateway_share_sync_up") == 0,
                "B decides alone",
                DETECT_S,
            )
            assert _errors(b) > errors_before
            assert "shared admission state unavailable" in caplog.text
            # Alone, B grants its own cap (as without Redis), though A holds the engine's.
            during = await asyncio.gather(*(_ask(b, "noisy", 1) for _ in range(CAP)))
            assert during == [200] * CAP
            assert await asyncio.gather(*held) == [200] * CAP

            if fault == "frozen":
                os.kill(server.pid, signal.SIGCONT)
                restarted = None
            else:
                restarted = redis_process(tmp_path, port=port)
                restarted.__enter__()
            try:
                await _until(
                    lambda: (
                        _sample(b, "gateway_share_sync_up") == 1
                        and _sample(a, "gateway_share_sync_up") == 1
                    ),
                    "both share again",
                    RECOVERY_S,
                )
                assert "shared admission state in use" in caplog.text
                again = await _b_sees_a_fill_the_engine(a, b, engine)
                assert await asyncio.gather(*again) == [200] * CAP
            finally:
                if restarted is not None:
                    restarted.__exit__(None, None, None)
