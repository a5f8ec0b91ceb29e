"""Latency outlier ejection: who is slow enough to leave, and never too many at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.gateway.outliers import (
    LatencyAverage,
    OutlierPolicy,
    ReplicaLatency,
    latency_outliers,
)

POLICY = OutlierPolicy(factor=3, min_gap_s=0.5, min_samples=20, max_ejected_fraction=0.34)


def r(avg: float, samples: int = 50, available: bool = True) -> ReplicaLatency:
    return ReplicaLatency(avg, samples, available)


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        pytest.param([r(0.2), r(0.25), r(3.0)], [2], id="one-slow-replica"),
        pytest.param([r(0.2), r(0.25), r(0.7)], [], id="3x-but-under-the-gap"),
        pytest.param([r(1.0), r(1.1), r(2.9)], [], id="gap-but-under-3x"),
        pytest.param([r(0.2), r(0.25), r(3.0, samples=5)], [], id="too-few-samples"),
        pytest.param([r(0.2), r(3.0)], [], id="two-replicas-budget-zero"),
        pytest.param([r(0.2), r(0.2), r(0.2), r(9.0), r(5.0), r(4.0)], [3, 4], id="slowest-first-within-budget"),
        pytest.param([r(0.2), r(0.2), r(0.2, available=False), r(9.0)], [], id="budget-used-by-an-ejected-one"),
        pytest.param([r(5.0), r(5.1), r(5.2)], [], id="slow-everywhere-is-not-broken"),
        pytest.param([r(0.2)], [], id="alone"),
    ],
)  # fmt: skip
def test_latency_outliers(replicas: list[ReplicaLatency], expected: list[int]) -> None:
    assert latency_outliers(replicas, POLICY) == expected


def test_latency_ejection_can_be_switched_off() -> None:
    off = OutlierPolicy(max_ejected_fraction=0)
    assert latency_outliers([r(0.1), r(0.1), r(0.1), r(50)], off) == []


@given(
    st.lists(
        st.builds(
            ReplicaLatency,
            st.floats(0, 100, allow_nan=False),
            st.integers(0, 100),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_never_too_many_out_and_never_the_last_one(replicas: list[ReplicaLatency]) -> None:
    chosen = latency_outliers(replicas, POLICY)
    assert len(set(chosen)) == len(chosen)
    assert all(replicas[i].available for i in chosen)
    out = sum(not x.available for x in replicas) + len(chosen)
    assert out <= max(0, int(POLICY.max_ejected_fraction * len(replicas))) or not chosen
    if chosen:
        assert sum(x.available for x in replicas) - len(chosen) >= 1


def test_the_average_follows_new_samples_and_resets() -> None:
    avg = LatencyAverage(alpha=0.5)
    avg.observe(1.0)
    assert avg.value == 1.0
    avg.observe(3.0)
    assert avg.value == 2.0
    assert avg.samples == 2
    avg.reset()
    assert (avg.value, avg.samples) == (0.0, 0)
