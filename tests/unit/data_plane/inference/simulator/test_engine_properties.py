"""Property tests of the simulated engine: whatever the workload, it finishes it correctly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.inference.simulator.engine_core import EngineCore
from data_plane.inference.simulator.profiles import TINY
from tests.support.sim_driver import request

_workloads = st.lists(
    st.tuples(
        st.integers(1, 190),  # prompt tokens (+ outputs <= max_model_len 256)
        st.integers(1, 60),  # output tokens
        st.sampled_from([None, "a", "b", "c"]),  # adapter
        st.integers(0, 3),  # prompt family (shared prefixes)
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    workload=_workloads,
    blocks=st.integers(16, 80),
    max_seqs=st.integers(1, 8),
    budget=st.integers(16, 512),
    max_loras=st.integers(1, 3),
)
def test_every_request_finishes_with_exactly_its_tokens(
    workload: list[tuple[int, int, str | None, int]],
    blocks: int,
    max_seqs: int,
    budget: int,
    max_loras: int,
) -> None:
    profile = TINY.with_overrides(
        num_gpu_blocks=blocks, max_num_seqs=max_seqs, max_num_batched_tokens=budget
    )
    core = EngineCore(profile, max_loras=max_loras, max_model_len=256)
    requests = [
        request([family * 1000 + i for i in range(prompt)], outputs, adapter=adapter)
        for prompt, outputs, adapter, family in workload
    ]
    for r in requests:
        core.add(r)
    now, produced = 0.0, {r.request_id: 0 for r in requests}
    for _ in range(50_000):
        if not core.has_work:
            break
        step = core.step(now)
        assert not step.idle
        adapters = {r.adapter for r, _ in step.tokens if r.adapter}
        assert len(adapters) <= max_loras
        assert step.num_prefill_tokens + step.num_decode_tokens <= budget
        assert 0.0 <= core.kv.usage <= 1.0
        assert core.num_running <= max_seqs
        for r, index in step.tokens:
            assert index == produced[r.request_id]
            produced[r.request_id] += 1
        now = step.end
    assert not core.has_work
    assert all(produced[r.request_id] == len(r.output_token_ids) for r in requests)
    assert core.kv.usage == 0.0
    for r in requests:
        assert r.first_token_time is not None
        assert r.finish_time is not None
        assert r.arrival_time <= r.first_token_time <= r.finish_time
