"""The shared quota store (a real redis-server on 127.0.0.1) frozen, killed, and back.

Two tenants share the gateway: `relaxed` (quotas fail open, the default) and `strict`
(`onStoreOutage: FailClosed`). During an outage the relaxed tenant is served (counted in
the replica), the strict one refused with 503 + Retry-After; the breaker keeps Redis off
the request path (a bounded number of store calls fail, not one per request); when Redis
returns both are served through it again, and finishes missed during the outage are
written back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import redis.asyncio as aioredis

from data_plane.gateway.tenancy.breaker import BreakerPolicy
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.redis_server import redis_process

KEYS = {"relaxed": "sk-relaxed-0123456789abcdef", "strict": "sk-strict-0123456789abcdef"}
TENANTS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: relaxed}
spec: {quotas: {requestsPerMinute: 100000}}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: strict}
spec: {quotas: {requestsPerMinute: 100000, onStoreOutage: FailClosed}}
"""
WAVES, PER_WAVE = 6, 10
BREAKER = BreakerPolicy()
"""The gateway's breaker (defaults): what bounds the store calls that may fail."""
STORE_TIMEOUT_S = 1.0
"""Above the default 250 ms: on a loaded 2-core machine a healthy Redis (and the first
connections of a cold pool) can stall past it, and this test is about real outages."""


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", tokens=2)
    await e.start()
    yield e
    await e.stop()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    tenants, keys = tmp_path / "tenants.yaml", tmp_path / "keys.txt"
    tenants.write_text(TENANTS)
    keys.write_text("".join(f"{t}: {k}\n" for t, k in KEYS.items()))
    return tenants, keys


def _client(gw: RunningGateway, tenant: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key=KEYS[tenant], max_retries=0, timeout=30
    )


async def _ask(client: openai.AsyncOpenAI) -> tuple[int, float, str | None]:
    """(status, seconds, Retry-After) of one completion."""
    started = time.perf_counter()
    try:
        await client.completions.create(model="llama", prompt="x", max_tokens=2)
    except openai.APIStatusError as exc:
        took = time.perf_counter() - started
        return exc.status_code, took, exc.response.headers.get("retry-after")
    return 200, time.perf_counter() - started, None


async def _load(gw: RunningGateway) -> dict[str, list[tuple[int, float, str | None]]]:
    """WAVES waves of PER_WAVE concurrent requests per tenant (one client per tenant)."""
    out: dict[str, list[tuple[int, float, str | None]]] = {t: [] for t in KEYS}
    for tenant in KEYS:
        async with _client(gw, tenant) as client:
            for _ in range(WAVES):
                out[tenant] += await asyncio.gather(*(_ask(client) for _ in range(PER_WAVE)))
    return out


def _sample(gw: RunningGateway, name: str, labels: dict[str, str] | None = None) -> float:
    registry = gw.gateway.metrics.registry
    return float(registry.get_sample_value(name, labels or {}) or 0.0)


def _bypassed(gw: RunningGateway) -> dict[str, float]:
    """Requests decided without the store so far, per outcome (one tenant each)."""
    return {
        o: _sample(gw, "gateway_quota_store_bypassed_total", {"tenant": t, "outcome": o})
        for t, o in (("relaxed", "fail_open"), ("strict", "fail_closed"))
    }


async def _until_served(gw: RunningGateway, tenant: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    async with _client(gw, tenant) as client:
        while (await _ask(client))[0] != 200:
            assert time.monotonic() < deadline, f"{tenant} not served again in {within_s:.0f}s"
            await asyncio.sleep(0.2)


def _report(what: str, results: dict[str, list[tuple[int, float, str | None]]]) -> None:
    for tenant, rows in results.items():
        codes = sorted({c for c, _, _ in rows})
        times = sorted(t for _, t, _ in rows)
        p50, worst = times[len(times) // 2], times[-1]
        print(f"{what} {tenant}: {len(rows)} requests, codes {codes}, p50 {p50 * 1000:.0f} ms,"
              f" max {worst * 1000:.0f} ms")  # fmt: skip


@pytest.mark.parametrize("fault", ["frozen", "killed"])
async def test_quota_store_outage_fails_open_or_closed_and_recovers(
    engine: FakeVllm, tmp_path: Path, fault: str
) -> None:
    tenants, keys = _files(tmp_path)
    with redis_process(tmp_path) as (url, server):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        async with run_gateway(
            discovery="static",
            upstreams=[f"llama={engine.url}"],
            tenants_files=[tenants],
            tenant_keys_file=keys,
            tenant_redis_url=url,
            tenant_redis_timeout_s=STORE_TIMEOUT_S,
        ) as gw:
            await _load(gw)  # warm: the pool's connections and the scripts loaded
            await _until_served(gw, "strict", within_s=BREAKER.max_open_s * 2 + 10)
            healthy = await _load(gw)
            _report("healthy", healthy)
            assert all(c == 200 for rows in healthy.values() for c, _, _ in rows)
            assert _sample(gw, "gateway_quota_store_up") == 1

            if fault == "frozen":
                os.kill(server.pid, signal.SIGSTOP)  # accepts connections, answers nothing
            else:
                server.kill()
                server.wait(10)
            errors_before = _sample(gw, "gateway_quota_store_errors_total", {"kind": "timeout"})
            errors_before += _sample(gw, "gateway_quota_store_errors_total", {"kind": "error"})
            bypassed_before = _bypassed(gw)
            outage = await _load(gw)
            _report(f"{fault} redis", outage)
            # Every request was answered (none waited for the store), with the tenant's choice.
            assert {c for c, _, _ in outage["relaxed"]} == {200}
            assert {c for c, _, _ in outage["strict"]} == {503}
            assert all(r is not None and int(r) >= 1 for _, _, r in outage["strict"])
            assert _sample(gw, "gateway_quota_store_up") == 0
            failed_calls = (
                _sample(gw, "gateway_quota_store_errors_total", {"kind": "timeout"})
                + _sample(gw, "gateway_quota_store_errors_total", {"kind": "error"})
                - errors_before
            )
            sent = sum(len(rows) for rows in outage.values())
            # The breaker: the calls in flight when it opened, then one trial per open
            # period, not one failed call per request.
            assert failed_calls <= PER_WAVE + BREAKER.failures + 8 < sent
            bypassed = {o: n - bypassed_before[o] for o, n in _bypassed(gw).items()}
            assert bypassed == {"fail_open": len(outage["relaxed"]), "fail_closed": sent / 2}

            if fault == "frozen":
                os.kill(server.pid, signal.SIGCONT)
                restarted = None
            else:
                restarted = redis_process(tmp_path, port=port)
                restarted.__enter__()
            try:
                await _until_served(gw, "strict", within_s=BREAKER.max_open_s * 2 + 10)
                await asyncio.sleep(0.5)  # the replay of missed finishes runs in the background
                assert _sample(gw, "gateway_quota_store_up") == 1
                shared = gw.gateway.tenancy.shared
                assert shared is not None and shared.pending_finishes == 0
                after = await _load(gw)
                _report("recovered", after)
                assert all(c == 200 for rows in after.values() for c, _, _ in rows)
                store = aioredis.Redis.from_url(url)
                try:
                    counted = await store.zcard("hoist:tenant:{relaxed}:requests")
                    in_flight = await store.zcard("hoist:tenant:{relaxed}:inflight")
                finally:
                    await store.aclose()
                assert counted >= len(after["relaxed"])  # counted in Redis again
                assert in_flight == 0  # no slot left behind by the outage
            finally:
                if restarted is not None:
                    restarted.__exit__(None, None, None)
