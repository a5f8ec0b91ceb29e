"""Properties of the scaling algorithm over generated policies, signals and histories."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.autoscaler.algorithm import (
    GatewayDemand,
    Reason,
    ReplicaSignals,
    ScalingInput,
    ScalingPolicy,
    ScalingState,
    recommend,
)

NOW = 50_000.0


@st.composite
def policies(draw: st.DrawFn) -> ScalingPolicy:
    lo = draw(st.integers(0, 5))
    hi = draw(st.integers(max(lo, 1), 12))
    stable = draw(st.integers(1, 120))
    return ScalingPolicy(
        enabled=True,
        spec_replicas=lo,
        min_replicas=lo,
        max_replicas=hi,
        target_concurrency=draw(st.floats(0.5, 32)),
        target_kv_cache_usage=draw(st.floats(0.1, 1.0)),
        target_ttft_seconds=draw(st.none() | st.floats(0.05, 5)),
        stable_window_seconds=stable,
        panic_window_seconds=draw(st.integers(1, stable)),
        scale_down_delay_seconds=draw(st.integers(0, 300)),
        scale_to_zero_after_seconds=draw(st.none() | st.integers(0, 600)),
        max_scale_up_step=draw(st.integers(1, 6)),
        max_scale_down_step=draw(st.integers(1, 6)),
        metrics_max_age_seconds=draw(st.integers(1, 60)),
    )


maybe_load = st.none() | st.floats(0, 64)


@st.composite
def replicas(draw: st.DrawFn) -> ReplicaSignals:
    ready = draw(st.booleans())
    return ReplicaSignals(
        name="r",
        ready=ready,
        loading=not ready and draw(st.booleans()),
        running=draw(maybe_load),
        waiting=draw(maybe_load),
        kv_cache_usage=draw(st.none() | st.floats(0, 1)),
        ttft_seconds=draw(st.none() | st.floats(0, 10)),
        observed_at=draw(st.none() | st.floats(NOW - 200, NOW)),
    )


demands = st.none() | st.builds(
    GatewayDemand,
    in_flight=st.integers(0, 200),
    held=st.integers(0, 50),
    observed_at=st.floats(NOW - 200, NOW),
)


@st.composite
def states(draw: st.DrawFn) -> ScalingState:
    recent = draw(st.lists(st.tuples(st.floats(NOW - 400, NOW), st.integers(0, 20)), max_size=5))
    return ScalingState(
        samples=(),
        recent=tuple(recent),
        panic_since=draw(st.none() | st.floats(NOW - 200, NOW)),
        idle_since=draw(st.none() | st.floats(NOW - 1000, NOW)),
    )


@settings(max_examples=400)
@given(
    policy=policies(),
    current=st.integers(0, 20),
    pods=st.lists(replicas(), max_size=8),
    demand=demands,
    state=states(),
)
def test_within_bounds_and_steps_and_never_drops_a_loading_replica(
    policy: ScalingPolicy,
    current: int,
    pods: list[ReplicaSignals],
    demand: GatewayDemand | None,
    state: ScalingState,
) -> None:
    rec = recommend(ScalingInput(NOW, current, tuple(pods), demand, policy), state)
    n = rec.desired_replicas
    assert policy.min_replicas <= n <= policy.max_replicas
    if policy.min_replicas <= current <= policy.max_replicas:
        assert current - policy.max_scale_down_step <= n <= current + policy.max_scale_up_step
        if any(p.loading and not p.ready for p in pods):
            assert n >= current, "a loading replica must never be scaled away"
    if n == 0 and current > 0:
        assert rec.observation is not None
        assert rec.observation.idle


@settings(max_examples=300)
@given(
    policy=policies(),
    current=st.integers(0, 20),
    pods=st.lists(replicas(), max_size=8),
    state=states(),
)
def test_no_fresh_signal_never_moves_the_count_except_into_bounds(
    policy: ScalingPolicy, current: int, pods: list[ReplicaSignals], state: ScalingState
) -> None:
    too_old = NOW - policy.metrics_max_age_seconds - 1
    stale = tuple(replace(p, observed_at=min(p.observed_at or too_old, too_old)) for p in pods)
    rec = recommend(ScalingInput(NOW, current, stale, None, policy), state)
    assert rec.reason in {Reason.METRICS_UNAVAILABLE, Reason.AT_MIN, Reason.AT_MAX}
    assert rec.desired_replicas == max(policy.min_replicas, min(policy.max_replicas, current))


@settings(max_examples=100, deadline=None)
@given(
    policy=policies(),
    start=st.integers(0, 12),
    load=st.integers(0, 120),
    lag=st.integers(0, 4),
    tick=st.sampled_from([2.0, 5.0, 15.0]),
)
def test_constant_load_never_flaps(
    policy: ScalingPolicy, start: int, load: int, lag: int, tick: float
) -> None:
    """Under constant load the count moves in one direction only, then stays put.

    New replicas become ready `lag` ticks after they are asked for (loading until then);
    the engines share the load evenly, and the gateway reports it too.
    """
    current = max(policy.min_replicas, min(policy.max_replicas, start))
    ready = current
    pending: list[tuple[int, int]] = []  # (tick index when ready, count)
    state = ScalingState()
    history = [current]
    # Long enough to settle: a scale-down may wait a stable window (plus the delay) after
    # each change, and a step removes as little as one replica.
    settle_s = (policy.max_replicas + 1) * (
        policy.stable_window_seconds + policy.scale_down_delay_seconds + tick
    )
    steps = max(120, int(settle_s / tick) + 20 + lag)
    for i in range(steps):
        now = NOW + i * tick
        ready += sum(c for at, c in pending if at == i)
        pending = [(at, c) for at, c in pending if at != i]
        ready = min(ready, current)
        loading = current - ready
        per = load / ready if ready else 0.0
        pods = tuple(
            ReplicaSignals("r", True, False, per, 0.0, None, None, now) for _ in range(ready)
        ) + tuple(ReplicaSignals("l", False, True) for _ in range(loading))
        gateway = GatewayDemand(
            in_flight=load if ready else 0, held=0 if ready else load, observed_at=now
        )
        rec = recommend(ScalingInput(now, current, pods, gateway, policy), state)
        state = rec.state
        if rec.desired_replicas > current:
            pending.append((i + lag, rec.desired_replicas - current))
        current = rec.desired_replicas
        history.append(current)
    moves = [b - a for a, b in itertools.pairwise(history) if b != a]
    assert all(m > 0 for m in moves) or all(m < 0 for m in moves), history
    assert len(set(history[-20:])) == 1, history


@settings(max_examples=100, deadline=None)
@given(
    policy=policies(),
    trace=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=80),
)
def test_zero_only_after_a_full_idle_period(
    policy: ScalingPolicy, trace: list[tuple[int, bool]]
) -> None:
    """Reaching zero needs `scaleToZeroAfterSeconds` of fresh, continuous zero demand."""
    tick = 10.0
    current = max(policy.min_replicas, 1)
    state = ScalingState()
    busy_or_unknown_at: float | None = None  # last tick with demand or without a signal
    for i, (in_flight, fresh) in enumerate(trace):
        now = NOW + i * tick
        seen = now if fresh else now - 10_000
        pods = tuple(
            ReplicaSignals("r", True, False, in_flight / current, 0, None, None, seen)
            for _ in range(current)
        )
        gateway = GatewayDemand(in_flight, 0, seen)
        if in_flight or not fresh:
            busy_or_unknown_at = now
        rec = recommend(ScalingInput(now, current, pods, gateway, policy), state)
        state = rec.state
        if rec.desired_replicas == 0 and current > 0:
            after = policy.scale_to_zero_after_seconds
            assert after is not None
            assert policy.min_replicas == 0
            assert busy_or_unknown_at is None or now - busy_or_unknown_at >= after + tick - 1e-6
            assert in_flight == 0
        current = rec.desired_replicas
