"""Quota counters in a real Redis: shared by gateway replicas, kept across restarts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.redis_server import running_redis

KEY = "sk-shared-quota-0123456789"


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", tokens=2)
    await e.start()
    yield e
    await e.stop()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        "apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team}\n"
        "spec: {quotas: {requestsPerMinute: 4, tokensPerMinute: 1000}}\n"
    )
    keys = tmp_path / "keys.txt"
    keys.write_text(f"team: {KEY}\n")
    return tenants, keys


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with running_redis(tmp_path) as url:
        yield url


async def _ask(gw: RunningGateway) -> None:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0) as c:
        await c.completions.create(model="llama", prompt="x", max_tokens=2)


async def test_two_replicas_share_one_budget_and_a_restart_keeps_it(
    engine: FakeVllm, files: tuple[Path, Path], redis_url: str
) -> None:
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"llama={engine.url}"],
            tenants_files=[files[0]],
            tenant_keys_file=files[1],
            tenant_redis_url=redis_url,
        ) as one,
        run_gateway(
            discovery="static",
            upstreams=[f"llama={engine.url}"],
            tenants_files=[files[0]],
            tenant_keys_file=files[1],
            tenant_redis_url=redis_url,
        ) as two,
    ):
        for gw in (one, two, one, two):
            await _ask(gw)
        for gw in (one, two):
            with pytest.raises(openai.RateLimitError) as info:
                await _ask(gw)
            assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    # a fresh gateway process state, the same Redis: still over quota
    async with run_gateway(
        discovery="static",
        upstreams=[f"llama={engine.url}"],
        tenants_files=[files[0]],
        tenant_keys_file=files[1],
        tenant_redis_url=redis_url,
    ) as again:
        with pytest.raises(openai.RateLimitError):
            await _ask(again)
    assert engine.requests == 4


async def test_counters_survive_a_redis_restart_with_persistence(
    engine: FakeVllm, files: tuple[Path, Path], tmp_path: Path
) -> None:
    data = tmp_path / "redis-data"
    data.mkdir()
    with running_redis(data, persist=True) as url:
        async with run_gateway(
            discovery="static",
            upstreams=[f"llama={engine.url}"],
            tenants_files=[files[0]],
            tenant_keys_file=files[1],
            tenant_redis_url=url,
        ) as gw:
            for _ in range(4):
                await _ask(gw)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with running_redis(data, persist=True, port=port) as url_again:
        async with run_gateway(
            discovery="static",
            upstreams=[f"llama={engine.url}"],
            tenants_files=[files[0]],
            tenant_keys_file=files[1],
            tenant_redis_url=url_again,
        ) as gw:
            with pytest.raises(openai.RateLimitError):
                await _ask(gw)


async def test_without_redis_a_replica_counts_alone(
    engine: FakeVllm, files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "hoist.gateway.tenancy")
    async with run_gateway(
        discovery="static",
        upstreams=[f"llama={engine.url}"],
        tenants_files=[files[0]],
        tenant_keys_file=files[1],
        tenant_redis_url="redis://127.0.0.1:1/0",  # nothing listens there
    ) as gw:
        for _ in range(4):
            await _ask(gw)
        with pytest.raises(openai.RateLimitError):
            await _ask(gw)
    assert "quota counters unavailable" in caplog.text
    assert "FailOpen tenants are counted in this replica" in caplog.text
