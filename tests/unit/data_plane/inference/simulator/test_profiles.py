"""Latency profiles: the step-time model and the default profile's calibration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.inference.simulator.profiles import (
    CONSTANT_20_TPS,
    DEFAULT_PROFILE,
    LLAMA_31_8B_H100,
    builtin_profiles,
    get_profile,
)


def test_default_profile_is_the_calibrated_h100_one() -> None:
    assert get_profile(DEFAULT_PROFILE) is LLAMA_31_8B_H100


def test_unknown_profile_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="constant-20tps"):
        get_profile("nope")


def test_empty_step_costs_nothing() -> None:
    assert (
        LLAMA_31_8B_H100.step_time(num_tokens=0, context_tokens=0, with_lora=False, swapped_in=0)
        == 0
    )


@given(
    tokens=st.integers(1, 16384),
    more=st.integers(0, 4096),
    context=st.integers(0, 500_000),
    more_context=st.integers(0, 100_000),
)
def test_step_time_never_shrinks_as_the_batch_grows(
    tokens: int, more: int, context: int, more_context: int
) -> None:
    for profile in builtin_profiles().values():
        small = profile.step_time(
            num_tokens=tokens, context_tokens=context, with_lora=False, swapped_in=0
        )
        big = profile.step_time(
            num_tokens=tokens + more,
            context_tokens=context + more_context,
            with_lora=False,
            swapped_in=0,
        )
        assert big >= small > 0


def test_adapters_cost_time() -> None:
    profile = LLAMA_31_8B_H100
    plain = profile.step_time(num_tokens=8, context_tokens=800, with_lora=False, swapped_in=0)
    lora = profile.step_time(num_tokens=8, context_tokens=800, with_lora=True, swapped_in=0)
    swap = profile.step_time(num_tokens=8, context_tokens=800, with_lora=True, swapped_in=1)
    assert plain < lora < swap


def test_h100_calibration_matches_the_documented_figures() -> None:
    """docs/simulator.md: ~6.5 ms per token alone, ~12k tokens/s at 256 x 1k context."""
    profile = LLAMA_31_8B_H100
    alone = profile.step_time(num_tokens=1, context_tokens=1000, with_lora=False, swapped_in=0)
    assert alone == pytest.approx(0.0065, rel=0.05)
    batch = 256
    saturated = profile.step_time(
        num_tokens=batch, context_tokens=batch * 1000, with_lora=False, swapped_in=0
    )
    assert batch / saturated == pytest.approx(12_000, rel=0.1)


def test_constant_profile_is_flat() -> None:
    one = CONSTANT_20_TPS.step_time(num_tokens=1, context_tokens=10, with_lora=False, swapped_in=0)
    many = CONSTANT_20_TPS.step_time(
        num_tokens=4096, context_tokens=10**6, with_lora=True, swapped_in=3
    )
    assert one == many == 0.05


def test_overrides_replace_only_what_is_given() -> None:
    profile = LLAMA_31_8B_H100.with_overrides(num_gpu_blocks=10, max_num_seqs=None)
    assert profile.num_gpu_blocks == 10
    assert profile.max_num_seqs == LLAMA_31_8B_H100.max_num_seqs
    assert profile.block_size == LLAMA_31_8B_H100.block_size
