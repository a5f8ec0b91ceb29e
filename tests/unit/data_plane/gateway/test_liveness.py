"""The gateway's derived timeouts: tables for the cases, properties for the bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.gateway.engine_metrics import parse_engine_metrics
from data_plane.gateway.liveness import (
    EngineCounters,
    EngineTiming,
    ProbePolicy,
    TimeoutPolicy,
    first_byte_timeout,
    hang_detection_bound_s,
    recent_timing,
    stall_timeout,
)

POLICY = TimeoutPolicy(
    first_byte_floor_s=5, first_byte_ceiling_s=300, slack=4, stall_floor_s=5,
    stall_factor=50, stall_ceiling_s=60,
)  # fmt: skip
KNOWN = EngineTiming(ttft_s=0.5, itl_s=0.02, e2e_s=4.0)


@pytest.mark.parametrize(
    ("timing", "waiting", "running", "stream", "max_tokens", "expected"),
    [
        pytest.param(EngineTiming(), 0, 0, True, None, 300, id="unknown-timing-is-the-ceiling"),
        pytest.param(KNOWN, 0, 8, True, None, 5, id="quick-engine-gets-the-floor"),
        pytest.param(KNOWN, 16, 8, True, None, 4 * (0.5 + 16 * 4.0 / 8), id="queue-drains-at-throughput"),
        pytest.param(KNOWN, 10_000, 1, True, None, 300, id="never-past-the-ceiling"),
        pytest.param(KNOWN, 0, 8, False, None, 300, id="non-streaming-without-max-tokens"),
        pytest.param(KNOWN, 0, 8, False, 1000, 4 * (0.5 + 1000 * 0.02), id="non-streaming-waits-for-its-tokens"),
        pytest.param(EngineTiming(ttft_s=2.0), 5, 0, True, None, 8, id="queue-without-e2e-ignored"),
    ],
)  # fmt: skip
def test_first_byte_timeout(  # noqa: PLR0917 - the table's columns
    timing: EngineTiming,
    waiting: int,
    running: int,
    stream: bool,
    max_tokens: int | None,
    expected: float,
) -> None:
    got = first_byte_timeout(
        POLICY, timing, waiting=waiting, running=running, stream=stream, max_tokens=max_tokens
    )
    assert got == pytest.approx(expected)


latency = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@given(
    ttft=st.none() | latency,
    itl=st.none() | latency,
    e2e=st.none() | latency,
    waiting=st.integers(0, 10_000),
    running=st.integers(0, 10_000),
    stream=st.booleans(),
    max_tokens=st.none() | st.integers(0, 100_000),
)
def test_first_byte_timeout_stays_within_floor_and_ceiling_and_grows_with_the_queue(  # noqa: PLR0917
    ttft: float | None,
    itl: float | None,
    e2e: float | None,
    waiting: int,
    running: int,
    stream: bool,
    max_tokens: int | None,
) -> None:
    timing = EngineTiming(ttft, itl, e2e)

    def timeout(w: int) -> float:
        return first_byte_timeout(
            POLICY, timing, waiting=w, running=running, stream=stream, max_tokens=max_tokens
        )

    assert POLICY.first_byte_floor_s <= timeout(waiting) <= POLICY.first_byte_ceiling_s
    assert timeout(waiting + 1) >= timeout(waiting)


@pytest.mark.parametrize(
    ("itl", "expected"),
    [
        pytest.param(None, 5, id="unknown-is-the-floor"),
        pytest.param(0.02, 5, id="fast-tokens-get-the-floor"),
        pytest.param(0.2, 10, id="n-times-the-inter-token-latency"),
        pytest.param(5.0, 60, id="never-past-the-idle-timeout"),
    ],
)
def test_stall_timeout(itl: float | None, expected: float) -> None:
    assert stall_timeout(POLICY, itl) == pytest.approx(expected)


def test_a_ceiling_below_the_floor_wins() -> None:
    tight = TimeoutPolicy(first_byte_ceiling_s=0.2, stall_ceiling_s=0.05)
    assert (
        first_byte_timeout(tight, KNOWN, waiting=0, running=1, stream=True, max_tokens=None) == 0.2
    )
    assert stall_timeout(tight, None) == 0.05


def test_recent_timing_is_the_mean_between_two_scrapes() -> None:
    first = EngineCounters(ttft_sum=10, ttft_count=10, itl_sum=1, itl_count=100)
    second = EngineCounters(
        ttft_sum=16, ttft_count=12, itl_sum=3, itl_count=200, e2e_sum=8, e2e_count=2
    )
    timing = recent_timing(first, second, EngineTiming(e2e_s=1.0))
    assert timing == EngineTiming(ttft_s=3.0, itl_s=0.02, e2e_s=4.0)


def test_recent_timing_keeps_the_last_value_without_new_samples_and_survives_a_restart() -> None:
    counters = EngineCounters(ttft_sum=5, ttft_count=5)
    last = EngineTiming(ttft_s=0.7, itl_s=0.01)
    assert recent_timing(counters, counters, last) == last
    restarted = EngineCounters(ttft_sum=2, ttft_count=1)  # counters went down: a new engine
    assert recent_timing(counters, restarted, last).ttft_s == 2.0
    assert recent_timing(None, counters, EngineTiming()).ttft_s == 1.0


def test_engine_counters_are_read_from_vllm_histograms() -> None:
    text = "\n".join([
        "# TYPE vllm:time_to_first_token_seconds histogram",
        'vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 3',
        'vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 1.5',
        'vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 3',
        'vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 0.4',
        'vllm:inter_token_latency_seconds_count{engine="0",model_name="m"} 20',
        'vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 6',
        'vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 3',
        'vllm:num_requests_running{engine="0",model_name="m"} 2',
    ])  # fmt: skip
    load = parse_engine_metrics(text)
    assert load.running == 2
    assert load.counters == EngineCounters(1.5, 3, 0.4, 20, 6, 3)


@pytest.mark.parametrize(
    ("probe", "bound"),
    [
        pytest.param(ProbePolicy(), 6.0, id="defaults"),
        pytest.param(ProbePolicy(interval_s=0.5, timeout_s=0.5, failures_to_eject=2), 3.0, id="tight"),
    ],
)  # fmt: skip
def test_hang_detection_bound(probe: ProbePolicy, bound: float) -> None:
    assert hang_detection_bound_s(probe) == bound
