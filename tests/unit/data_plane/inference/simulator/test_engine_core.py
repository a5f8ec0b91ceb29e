"""Continuous batching mechanics of the simulated engine (virtual time)."""

from __future__ import annotations

import pytest

from data_plane.inference.simulator.engine_core import EngineCore
from data_plane.inference.simulator.profiles import LLAMA_31_8B_H100, TINY
from tests.support.sim_driver import request, run


def test_a_request_produces_exactly_its_planned_tokens() -> None:
    core = EngineCore(TINY)
    r = request(range(40), 5)
    core.add(r)
    _, steps = run(core)
    assert r.num_output_tokens == 5
    assert r.finished
    assert [i for s in steps for (req, i) in s.tokens if req is r] == [0, 1, 2, 3, 4]
    assert r.first_scheduled_time == 0.0
    assert r.first_token_time is not None
    assert r.finish_time is not None
    assert r.first_token_time < r.finish_time
    assert core.kv.usage == 0.0


def test_decodes_are_batched_into_one_step() -> None:
    core = EngineCore(TINY)
    reqs = [request([i] * 20, 4) for i in range(5)]
    for r in reqs:
        core.add(r)
    _, steps = run(core)
    assert len(steps) == 4  # one prefill step (all five), then three decode steps
    assert steps[0].num_prefill_tokens == 100
    assert all(s.num_decode_tokens == 5 for s in steps[1:])


def test_long_prompts_are_prefilled_in_chunks() -> None:
    profile = TINY.with_overrides(max_num_batched_tokens=64)
    core = EngineCore(profile)
    r = request(range(200), 2)
    core.add(r)
    _, steps = run(core)
    assert [s.num_prefill_tokens for s in steps[:4]] == [64, 64, 64, 8]
    assert [len(s.tokens) for s in steps[:4]] == [0, 0, 0, 1]


def test_max_num_seqs_caps_the_batch() -> None:
    core = EngineCore(TINY.with_overrides(max_num_seqs=2))
    for i in range(3):
        core.add(request([i] * 8, 3))
    core.step(0.0)
    assert core.num_running == 2
    assert core.num_waiting == 1


def test_abort_frees_blocks_wherever_the_request_is() -> None:
    core = EngineCore(TINY.with_overrides(max_num_seqs=1))
    running, waiting = request(range(40), 50), request(range(40, 80), 50)
    core.add(running)
    core.add(waiting)
    core.step(0.0)
    assert core.kv.usage > 0
    core.abort(running.request_id)
    core.abort(waiting.request_id)
    core.abort("unknown")
    assert not core.has_work
    assert core.kv.usage == 0.0


def test_rejects_bad_requests_and_impossible_configs() -> None:
    core = EngineCore(TINY)
    core.add(request([1], 1))
    with pytest.raises(ValueError, match="duplicate"):
        core.add(core.waiting[0])
    with pytest.raises(ValueError, match="at least one prompt token"):
        core.add(request([], 1))
    with pytest.raises(ValueError, match="max_model_len"):
        core.add(request(range(500), 100))
    with pytest.raises(ValueError, match="KV cache holds"):
        EngineCore(TINY.with_overrides(num_gpu_blocks=2))


def test_preempts_the_newest_request_when_decodes_run_out_of_blocks() -> None:
    # 8 blocks of 16 tokens; two requests of 48-token prompts (3 blocks each) that grow.
    core = EngineCore(
        TINY.with_overrides(num_gpu_blocks=8, max_num_batched_tokens=512), max_model_len=128
    )
    old, new = request(range(48), 60), request(range(100, 148), 60)
    core.add(old)
    core.add(new)
    run(core)
    assert new.num_preemptions >= 1
    assert old.num_preemptions == 0
    assert old.finish_time is not None
    assert new.finish_time is not None
    assert old.finish_time < new.finish_time
    assert core.num_preemptions == new.num_preemptions


def test_identical_prompts_in_flight_share_cached_blocks() -> None:
    core = EngineCore(LLAMA_31_8B_H100)
    first = request(range(64), 30)
    core.add(first)
    core.step(0.0)  # prefill of the first fills and caches 4 blocks
    second = request(range(64), 30)
    core.add(second)
    core.step(1.0)
    assert second.num_cached_tokens == 48  # 3 full blocks; the last token is recomputed
    assert core.kv.stats.hits == 48
    assert core.kv.stats.queries == 128
