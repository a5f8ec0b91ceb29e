"""The scaling algorithm: table tests of single decisions and of short tick sequences."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from control_plane.api.model import ModelSpec
from control_plane.autoscaler.algorithm import (
    GatewayDemand,
    Reason,
    Recommendation,
    ReplicaSignals,
    ScalingInput,
    ScalingPolicy,
    ScalingState,
    recommend,
)

NOW = 10_000.0
POLICY = ScalingPolicy(
    min_replicas=0,
    max_replicas=10,
    target_concurrency=4,
    stable_window_seconds=60,
    panic_window_seconds=6,
    scale_down_delay_seconds=0,
    scale_to_zero_after_seconds=120,
    max_scale_up_step=4,
    max_scale_down_step=2,
)


def replica(
    i: int,
    running: float | None = 0,
    waiting: float | None = 0,
    *,
    ready: bool = True,
    loading: bool = False,
    kv: float | None = None,
    ttft: float | None = None,
    age: float = 1.0,
) -> ReplicaSignals:
    return ReplicaSignals(
        name=f"r{i}",
        ready=ready,
        loading=loading,
        running=running,
        waiting=waiting,
        kv_cache_usage=kv,
        ttft_seconds=ttft,
        observed_at=NOW - age,
    )


def busy(n: int, running: float, waiting: float = 0) -> tuple[ReplicaSignals, ...]:
    return tuple(replica(i, running, waiting) for i in range(n))


def demand(in_flight: int = 0, held: int = 0, age: float = 1.0) -> GatewayDemand:
    return GatewayDemand(in_flight=in_flight, held=held, observed_at=NOW - age)


def decide(
    current: int,
    replicas: tuple[ReplicaSignals, ...],
    gateway: GatewayDemand | None,
    policy: ScalingPolicy = POLICY,
    state: ScalingState | None = None,
) -> Recommendation:
    inp = ScalingInput(NOW, current, replicas, gateway, policy)
    return recommend(inp, state or ScalingState())


IDLE_LONG = ScalingState(idle_since=NOW - 500)


@pytest.mark.parametrize(
    ("current", "replicas", "gateway", "policy", "state", "want", "reason"),
    [
        pytest.param(2, busy(2, 4), demand(8), POLICY, None, 2, Reason.STEADY, id="on-target"),
        pytest.param(2, busy(2, 6), demand(12), POLICY, None, 3, Reason.SCALE_UP, id="scale-up"),
        pytest.param(
            2, busy(2, 40), demand(80), POLICY, None, 6, Reason.PANIC, id="panic-bounded-step"
        ),
        pytest.param(
            8, busy(8, 40), demand(320), POLICY, None, 10, Reason.AT_MAX, id="clamped-to-max"
        ),
        pytest.param(4, busy(4, 1), demand(4), POLICY, None, 2, Reason.SCALE_DOWN, id="down-step"),
        pytest.param(
            5, busy(5, 4.3), demand(21), POLICY, None, 5, Reason.STEADY, id="within-tolerance"
        ),
        pytest.param(
            4,
            busy(4, 1),
            demand(4),
            POLICY,
            ScalingState(last_scale_at=NOW - 10),
            4,
            Reason.STABILIZING,
            id="down-waits-a-window-after-a-change",
        ),
        pytest.param(
            4,
            busy(4, 1),
            demand(4),
            POLICY,
            ScalingState(last_scale_at=NOW - 61),
            2,
            Reason.SCALE_DOWN,
            id="down-after-the-window",
        ),
        pytest.param(
            2,
            busy(2, 6),
            demand(12),
            POLICY,
            ScalingState(last_scale_at=NOW - 1),
            3,
            Reason.SCALE_UP,
            id="up-never-waits",
        ),
        pytest.param(
            4,
            busy(4, 1),
            demand(4),
            replace(POLICY, scale_down_delay_seconds=300),
            ScalingState(recent=((NOW - 100, 4),)),
            4,
            Reason.STABILIZING,
            id="down-held-by-delay",
        ),
        pytest.param(
            4,
            busy(4, 1),
            demand(4),
            replace(POLICY, scale_down_delay_seconds=300),
            ScalingState(recent=((NOW - 400, 4),)),
            2,
            Reason.SCALE_DOWN,
            id="down-after-delay",
        ),
        pytest.param(
            1, busy(1, 0), demand(0), POLICY, IDLE_LONG, 0, Reason.SCALE_TO_ZERO, id="to-zero"
        ),
        pytest.param(
            1,
            busy(1, 0),
            demand(0),
            POLICY,
            ScalingState(idle_since=NOW - 60),
            1,
            Reason.STEADY,
            id="idle-not-long-enough",
        ),
        pytest.param(
            1,
            busy(1, 0),
            demand(0),
            replace(POLICY, scale_to_zero_after_seconds=None),
            IDLE_LONG,
            1,
            Reason.STEADY,
            id="zero-disabled",
        ),
        pytest.param(
            1,
            busy(1, 0),
            demand(0),
            replace(POLICY, min_replicas=1),
            IDLE_LONG,
            1,
            Reason.STEADY,
            id="min-one-never-zero",
        ),
        pytest.param(0, (), demand(0, held=1), POLICY, None, 1, Reason.SCALE_FROM_ZERO, id="hold"),
        pytest.param(
            0, (), demand(0, held=30), POLICY, None, 4, Reason.SCALE_FROM_ZERO, id="hold-many"
        ),
        pytest.param(0, (), demand(0), POLICY, None, 0, Reason.IDLE, id="idle-at-zero"),
        pytest.param(
            0,
            (),
            demand(0),
            replace(POLICY, min_replicas=2),
            None,
            2,
            Reason.AT_MIN,
            id="zero-below-min",
        ),
        pytest.param(
            0, (), None, POLICY, None, 0, Reason.METRICS_UNAVAILABLE, id="zero-no-gateway"
        ),
        pytest.param(
            3,
            (replica(0, 0), replica(1, 0), replica(2, None, None, ready=False, loading=True)),
            demand(0),
            POLICY,
            IDLE_LONG,
            3,
            Reason.LOADING,
            id="loading-never-removed",
        ),
        pytest.param(
            2,
            (replica(0, 20, kv=0.85), replica(1, 20, kv=0.85)),
            demand(40),
            replace(POLICY, target_concurrency=100),
            None,
            2,
            Reason.STEADY,
            id="kv-signal-keeps",
        ),
        pytest.param(
            2,
            (replica(0, 2, kv=1.0), replica(1, 2, kv=1.0)),
            demand(4),
            replace(POLICY, target_concurrency=100, target_kv_cache_usage=0.5),
            None,
            4,
            Reason.PANIC,
            id="kv-signal-scales-up",
        ),
        pytest.param(
            2,
            (replica(0, 4, 2, ttft=3.0), replica(1, 4, 2, ttft=3.0)),
            demand(12),
            replace(POLICY, target_concurrency=8, target_ttft_seconds=1.0),
            None,
            3,
            Reason.TTFT_PRESSURE,
            id="ttft-above-target",
        ),
        pytest.param(
            2,
            busy(2, 4),
            demand(8),
            replace(POLICY, enabled=False, spec_replicas=5),
            None,
            5,
            Reason.DISABLED,
            id="disabled-follows-spec",
        ),
    ],
)
def test_single_decision(  # noqa: PLR0917
    current: int,
    replicas: tuple[ReplicaSignals, ...],
    gateway: GatewayDemand | None,
    policy: ScalingPolicy,
    state: ScalingState | None,
    want: int,
    reason: Reason,
) -> None:
    rec = decide(current, replicas, gateway, policy, state)
    assert (rec.desired_replicas, rec.reason) == (want, reason), rec.message


@pytest.mark.parametrize(
    ("current", "replicas", "gateway"),
    [
        pytest.param(3, busy(3, 0, 0), None, id="engines-stale-no-gateway"),
        pytest.param(3, busy(3, 0, 0), demand(0, age=600), id="everything-stale"),
        pytest.param(3, tuple(replica(i, None, None) for i in range(3)), None, id="never-seen"),
        pytest.param(3, (), None, id="no-pods-no-gateway"),
    ],
)
def test_missing_or_stale_metrics_hold(
    current: int, replicas: tuple[ReplicaSignals, ...], gateway: GatewayDemand | None
) -> None:
    stale = tuple(replace(r, observed_at=NOW - 600) for r in replicas)
    rec = decide(current, stale, gateway, state=IDLE_LONG)
    assert (rec.desired_replicas, rec.reason) == (current, Reason.METRICS_UNAVAILABLE)
    assert rec.state.idle_since is None, "unknown demand must restart the idle clock"


def test_stale_metrics_between_idle_ticks_restart_the_idle_clock() -> None:
    """Idle, then a gap in metrics, then idle again: zero waits a full idle period anew."""
    policy = replace(POLICY, scale_to_zero_after_seconds=100)

    def idle_at(t: float) -> ScalingInput:
        gateway = GatewayDemand(in_flight=0, held=0, observed_at=t)
        return ScalingInput(t, 1, (replace(replica(0), observed_at=t),), gateway, policy)

    state = ScalingState()
    t = NOW
    for _ in range(5):  # 80 s idle
        state = recommend(idle_at(t), state).state
        t += 20
    gap = recommend(ScalingInput(t, 1, (), None, policy), state)
    assert gap.reason is Reason.METRICS_UNAVAILABLE
    state, t = gap.state, t + 20
    for _ in range(5):  # another 80 s idle: still not 100 s in one run
        rec = recommend(idle_at(t), state)
        state, t = rec.state, t + 20
        assert rec.desired_replicas == 1
    rec = recommend(idle_at(t), state)
    assert (rec.desired_replicas, rec.reason) == (0, Reason.SCALE_TO_ZERO)


def test_without_the_gateway_a_model_never_goes_to_zero() -> None:
    """Idle engines, but nobody would see the next request: keep one replica."""
    policy = replace(POLICY, scale_to_zero_after_seconds=0)
    rec = decide(1, busy(1, 0), None, policy, IDLE_LONG)
    assert rec.observation is not None
    assert not rec.observation.idle
    assert (rec.desired_replicas, rec.reason) == (1, Reason.STEADY)
    with_gateway = decide(1, busy(1, 0), demand(0), policy, IDLE_LONG)
    assert (with_gateway.desired_replicas, with_gateway.reason) == (0, Reason.SCALE_TO_ZERO)


def test_unreadable_engines_do_not_block_zero_when_the_gateway_sees_no_demand() -> None:
    """Every request passes through the gateway: its fresh zero is enough evidence."""
    stale = (replica(0, age=600), replica(1, age=600))
    rec = decide(2, stale, demand(0), replace(POLICY, max_scale_down_step=2), IDLE_LONG)
    assert (rec.desired_replicas, rec.reason) == (0, Reason.SCALE_TO_ZERO)


def test_partial_metrics_extrapolate_instead_of_reading_zero() -> None:
    """Two of four ready replicas report 8 each: the other two count as loaded alike."""
    replicas = (replica(0, 8), replica(1, 8), replica(2, age=600), replica(3, age=600))
    rec = decide(4, replicas, None)
    assert rec.observation is not None
    assert rec.observation.concurrency == 32
    assert not rec.observation.idle
    assert rec.desired_replicas == 8


def test_partially_stale_zero_is_not_idle() -> None:
    replicas = (replica(0, 0), replica(1, 0, age=600))
    rec = decide(2, replicas, None, state=IDLE_LONG)
    assert rec.observation is not None
    assert not rec.observation.idle
    assert rec.desired_replicas >= 1


def test_panic_never_scales_down_until_the_stable_window_passes() -> None:
    policy = replace(POLICY, max_scale_up_step=10)
    state = ScalingState()
    burst = recommend(ScalingInput(NOW, 1, busy(1, 20), demand(20), policy), state)
    assert burst.panic
    assert burst.desired_replicas == 5
    calm = ScalingInput(NOW + 10, 5, busy(5, 0.5), demand(3), policy)
    after = recommend(calm, burst.state)
    assert after.panic
    assert after.desired_replicas == 5
    later = recommend(replace(calm, now=NOW + 70), after.state)
    assert not later.panic


def test_a_change_starts_the_cool_down() -> None:
    rec = decide(2, busy(2, 6), demand(12))
    assert rec.desired_replicas == 3
    assert rec.state.last_scale_at == NOW
    steady = decide(2, busy(2, 4), demand(8), state=ScalingState(last_scale_at=NOW - 500))
    assert steady.state.last_scale_at == NOW - 500


def test_gateway_demand_dominates_a_lagging_engine_view() -> None:
    rec = decide(1, busy(1, 1), demand(in_flight=3, held=5))
    assert rec.observation is not None
    assert rec.observation.concurrency == 8
    assert rec.observation.held == 5


def test_policy_from_spec_maps_every_field() -> None:
    spec = ModelSpec.model_validate(
        {
            "source": "m",
            "replicas": 2,
            "minReplicas": 1,
            "maxReplicas": 7,
            "autoscaling": {
                "enabled": True,
                "targetConcurrency": 3,
                "stableWindowSeconds": 30,
                "panicWindowSeconds": 3,
                "scaleDownDelaySeconds": 90,
                "scaleToZeroAfterSeconds": 600,
                "maxScaleUpStep": 2,
                "maxScaleDownStep": 3,
                "targetKvCacheUsage": 0.7,
                "targetTtftSeconds": 1.5,
            },
        }
    )
    p = ScalingPolicy.from_spec(spec, metrics_max_age_seconds=12)
    assert (p.min_replicas, p.max_replicas, p.spec_replicas, p.enabled) == (1, 7, 2, True)
    assert (p.target_concurrency, p.target_kv_cache_usage, p.target_ttft_seconds) == (3, 0.7, 1.5)
    assert (p.stable_window_seconds, p.panic_window_seconds) == (30, 3)
    assert (p.scale_down_delay_seconds, p.scale_to_zero_after_seconds) == (90, 600)
    assert (p.max_scale_up_step, p.max_scale_down_step, p.metrics_max_age_seconds) == (2, 3, 12)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"minReplicas": 3, "maxReplicas": 2, "replicas": 2}, id="min-over-max"),
        pytest.param({"autoscaling": {"targetConcurrency": 0}}, id="target-zero"),
        pytest.param({"autoscaling": {"stableWindowSeconds": -1}}, id="negative-window"),
        pytest.param({"autoscaling": {"scaleDownDelaySeconds": -5}}, id="negative-delay"),
        pytest.param(
            {"autoscaling": {"stableWindowSeconds": 5, "panicWindowSeconds": 10}},
            id="panic-longer-than-stable",
        ),
        pytest.param({"autoscaling": {"targetKvCacheUsage": 1.5}}, id="kv-target-over-one"),
        pytest.param({"autoscaling": {"targetTtftSeconds": 0}}, id="ttft-target-zero"),
        pytest.param({"autoscaling": {"maxScaleUpStep": 0}}, id="step-zero"),
    ],
)
def test_nonsense_settings_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ModelSpec.model_validate({"source": "m", **body})


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"min_replicas": 3, "max_replicas": 2}, id="min-over-max"),
        pytest.param({"target_concurrency": 0}, id="target-zero"),
        pytest.param({"panic_window_seconds": 0}, id="panic-zero"),
        pytest.param({"scale_down_delay_seconds": -1}, id="negative-delay"),
        pytest.param({"max_scale_down_step": 0}, id="step-zero"),
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"."):
        ScalingPolicy(**kwargs)  # type: ignore[arg-type]
