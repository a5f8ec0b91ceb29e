"""The latency model moves the right way (virtual time, no wall clock)."""

from __future__ import annotations

import pytest

from data_plane.inference.simulator.engine_core import EngineCore
from data_plane.inference.simulator.profiles import LLAMA_31_8B_H100, TINY
from tests.support.sim_driver import request, run, ttft

PROMPT = list(range(2000))


def _alone_ttft(core: EngineCore, prompt: list[int], start: float, **kwargs: str | None) -> float:
    r = request(prompt, 4, arrival=start, **kwargs)
    core.add(r)
    run(core, start)
    return ttft(r)


def test_a_cached_prefix_lowers_ttft() -> None:
    core = EngineCore(LLAMA_31_8B_H100)
    cold = _alone_ttft(core, PROMPT, 0.0)
    warm = _alone_ttft(core, PROMPT, 10.0)
    assert warm < cold / 2
    assert core.kv.stats.hits >= 1984


def test_the_prefix_cache_does_not_cross_adapters_or_salts() -> None:
    core = EngineCore(LLAMA_31_8B_H100, max_loras=2)
    _alone_ttft(core, PROMPT, 0.0, adapter="a")
    hits = core.kv.stats.hits
    _alone_ttft(core, PROMPT, 10.0, adapter="b")
    _alone_ttft(core, PROMPT, 20.0)
    _alone_ttft(core, PROMPT, 30.0, salt="tenant-x")
    assert core.kv.stats.hits == hits
    _alone_ttft(core, PROMPT, 40.0, adapter="a")
    assert core.kv.stats.hits > hits


def test_evicted_prefixes_are_recomputed() -> None:
    # 64 blocks of 16 tokens: two more 480-token prompts push the first one out.
    core = EngineCore(LLAMA_31_8B_H100.with_overrides(num_gpu_blocks=64), max_model_len=1024)
    first = list(range(480))
    cold = _alone_ttft(core, first, 0.0)
    warm = _alone_ttft(core, first, 5.0)
    assert warm < cold
    hits = core.kv.stats.hits
    _alone_ttft(core, list(range(10_000, 10_480)), 10.0)
    _alone_ttft(core, list(range(20_000, 20_480)), 20.0)
    # The tail of a freed prompt is evicted first; at most its head blocks survive.
    again = _alone_ttft(core, first, 30.0)
    assert warm < again <= cold
    assert again == pytest.approx(cold, rel=0.1)
    assert core.kv.stats.hits - hits <= 2 * 16


def test_a_full_kv_cache_queues_requests() -> None:
    # 64 blocks = 1024 tokens; each request needs 400 + 100 tokens = 32 blocks: two fit.
    core = EngineCore(TINY.with_overrides(max_num_batched_tokens=4096))
    reqs = [request(range(i * 1000, i * 1000 + 400), 100) for i in range(3)]
    for r in reqs:
        core.add(r)
    core.step(0.0)
    assert core.num_running == 2
    assert core.num_waiting == 1
    run(core, core.running[0].first_token_time or 0.0)
    third = reqs[2]
    assert third.first_scheduled_time is not None
    assert third.first_scheduled_time > 0
    assert ttft(third) > ttft(reqs[0]) * 5
    assert third.num_preemptions == 0


def test_more_load_means_slower_tokens() -> None:
    def mean_itl(concurrency: int) -> float:
        core = EngineCore(LLAMA_31_8B_H100)
        reqs = [request(range(i * 5000, i * 5000 + 1000), 64) for i in range(concurrency)]
        for r in reqs:
            core.add(r)
        run(core)
        return (
            sum(((r.finish_time or 0) - (r.first_token_time or 0)) / 63 for r in reqs) / concurrency
        )

    assert mean_itl(1) < mean_itl(64) < mean_itl(256)


def test_an_adapter_swap_costs_time() -> None:
    core = EngineCore(LLAMA_31_8B_H100, max_loras=1)
    resident_before = _alone_ttft(core, list(range(100)), 0.0, adapter="a")
    resident = _alone_ttft(core, list(range(200, 300)), 10.0, adapter="a")
    swapped = _alone_ttft(core, list(range(400, 500)), 20.0, adapter="b")
    assert swapped > resident
    assert resident_before > resident  # the first use also swapped in
    assert core.lora_slots.swaps == 2


def test_max_loras_limits_adapters_per_step() -> None:
    core = EngineCore(TINY, max_loras=1)
    a, b = request(range(10), 5, adapter="a"), request(range(10), 5, adapter="b")
    core.add(a)
    core.add(b)
    step = core.step(0.0)
    assert core.running == [a]
    assert core.waiting[0] is b
    assert step.swapped_in_adapters == 1
    run(core, step.end)
    assert b.first_scheduled_time is not None
    assert a.finish_time is not None
    assert b.first_scheduled_time >= a.finish_time
