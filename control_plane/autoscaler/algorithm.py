"""How many replicas a model should have now: a pure, Knative-style scaling algorithm.

`recommend(inputs, state) -> Recommendation` takes what was observed at one tick (per-replica
engine signals, the gateway's demand, the replicas' states) and a small history value that
the caller keeps between ticks, and returns the desired replica count, why, and the next
history. No I/O, no clocks: time is whatever `inputs.now` says (seconds, any epoch, as long
as every timestamp in one input uses the same clock).

The steps, in order:
1. Observe: the concurrency the model carries is the larger of the gateway's view
   (in-flight + held requests) and the engines' view (running + waiting); a source older
   than `metrics_max_age_seconds` is ignored. If nothing fresh is known, hold (never scale
   to zero or to max on missing data). KV-cache usage is a second load signal.
2. Need: replicas needed now = max(concurrency / target, KV usage / KV target).
3. Windows: the mean need over the stable window (default 60 s) and the panic window
   (6 s). Panic mode starts when the panic need is at least twice the ready replicas (or
   TTFT exceeds its target while requests wait); in panic the model only grows.
4. Scale-down stabilization: a lower count is taken only once every recommendation of the
   last `scale_down_delay_seconds` was that low (the highest of them wins).
5. Zero: only after `scale_to_zero_after_seconds` of fresh, continuous idleness, with
   `minReplicas: 0`. A model at zero scales up at once when the gateway holds a request.
6. Step limits, then the min/max bounds (the bounds always win), then: while a replica is
   still loading nothing is removed (a ReplicaSet removes not-ready pods first, so any
   scale-down would kill the loading one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Self

from control_plane.api.model import ModelSpec

_EPS = 1e-9


class Reason(StrEnum):
    """Why the recommendation is what it is (a bounded label and a condition reason)."""

    DISABLED = "AutoscalingDisabled"
    STEADY = "WithinTarget"
    SCALE_UP = "ScaleUp"
    PANIC = "PanicScaleUp"
    TTFT_PRESSURE = "TtftAboveTarget"
    SCALE_DOWN = "ScaleDown"
    STABILIZING = "ScaleDownStabilizing"
    LOADING = "ScaleDownDeferredWhileLoading"
    SCALE_FROM_ZERO = "ScaleFromZero"
    SCALE_TO_ZERO = "ScaleToZero"
    IDLE = "IdleAtZero"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    AT_MIN = "AtMinReplicas"
    AT_MAX = "AtMaxReplicas"


@dataclass(frozen=True)
class ReplicaSignals:
    """One replica (pod or local process) as last observed. `None`: not known."""

    name: str
    ready: bool
    """Serving requests."""
    loading: bool = False
    """Exists but not ready yet (starting, loading weights). Never removed."""
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    """Share of the KV cache in use, 0..1."""
    ttft_seconds: float | None = None
    """Mean time to first token over the last interval."""
    observed_at: float | None = None
    """When the engine's metrics were read; `None`: never."""


@dataclass(frozen=True)
class GatewayDemand:
    """The gateway's view of one model."""

    in_flight: int
    """Requests being proxied to a replica."""
    held: int
    """Requests waiting in the gateway for a replica (the model is at zero or loading)."""
    observed_at: float


@dataclass(frozen=True)
class ScalingPolicy:
    """The model's autoscaling settings, in the algorithm's units."""

    enabled: bool = True
    spec_replicas: int = 1
    """What the spec asks for when autoscaling is off."""
    min_replicas: int = 0
    max_replicas: int = 1000
    target_concurrency: float = 8.0
    target_kv_cache_usage: float = 0.9
    target_ttft_seconds: float | None = None
    stable_window_seconds: float = 60.0
    panic_window_seconds: float = 6.0
    panic_threshold: float = 2.0
    """Panic when the panic-window need reaches this multiple of the ready replicas."""
    scale_down_delay_seconds: float = 300.0
    scale_to_zero_after_seconds: float | None = None
    max_scale_up_step: int = 4
    max_scale_down_step: int = 1
    metrics_max_age_seconds: float = 30.0
    """Signals older than this are treated as missing."""
    tolerance: float = 0.1
    """Outside panic, no change while the stable need is within this share of the current
    count (as the Kubernetes HPA does): a need hovering around a boundary does not flap."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 0 <= min_replicas <= max_replicas")
        if self.target_concurrency <= 0 or not 0 < self.target_kv_cache_usage <= 1:
            raise ValueError("targets must be positive (KV target within (0, 1])")
        if not 0 < self.panic_window_seconds <= self.stable_window_seconds:
            raise ValueError("need 0 < panic window <= stable window")
        if self.scale_down_delay_seconds < 0 or self.metrics_max_age_seconds <= 0:
            raise ValueError("delays must not be negative")
        if self.max_scale_up_step < 1 or self.max_scale_down_step < 1:
            raise ValueError("steps must be at least 1")
        if not 0 <= self.tolerance < 1:
            raise ValueError("tolerance must lie in [0, 1)")

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, metrics_max_age_seconds: float = 30.0) -> Self:
        a = spec.autoscaling
        return cls(
            enabled=a.enabled,
            spec_replicas=spec.replicas,
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            target_concurrency=a.target_concurrency,
            target_kv_cache_usage=a.target_kv_cache_usage,
            target_ttft_seconds=a.target_ttft_seconds,
            stable_window_seconds=a.stable_window_seconds,
            panic_window_seconds=a.panic_window_seconds,
            scale_down_delay_seconds=a.scale_down_delay_seconds,
            scale_to_zero_after_seconds=a.scale_to_zero_after_seconds,
            max_scale_up_step=a.max_scale_up_step,
            max_scale_down_step=a.max_scale_down_step,
            metrics_max_age_seconds=metrics_max_age_seconds,
        )


@dataclass(frozen=True)
class ScalingInput:
    now: float
    current_replicas: int
    """The replica count last asked for (the Deployment's `spec.replicas`)."""
    replicas: tuple[ReplicaSignals, ...]
    demand: GatewayDemand | None
    policy: ScalingPolicy


@dataclass(frozen=True)
class Sample:
    at: float
    need: float
    """Replicas needed at that moment (fractional)."""


@dataclass(frozen=True)
class ScalingState:
    """What the algorithm remembers between ticks; start with `ScalingState()`."""

    samples: tuple[Sample, ...] = ()
    """Needs observed within the stable window."""
    recent: tuple[tuple[float, int], ...] = ()
    """(time, unstabilized recommendation) within the scale-down delay."""
    panic_since: float | None = None
    idle_since: float | None = None
    """Start of the current run of fresh observations of zero demand."""
    last_scale_at: float | None = None
    """When the count last changed. A scale-down waits a stable window after any change,
    so that the window holds what the current count produced: with continuous batching,
    the concurrency a fleet shows falls as it grows (requests finish sooner), and a window
    still full of an over-provisioned fleet's numbers would remove too much at once."""


@dataclass(frozen=True)
class Observation:
    concurrency: float | None
    """Requests the model carries; `None`: no fresh signal at all."""
    need: float | None
    idle: bool
    """The gateway's fresh view says nothing is in flight or held, and no engine that
    reported is busy. Every request passes through the gateway, so engines that could not
    be read do not block idleness; without the gateway's view a model is never idle (at
    zero, only the gateway could wake it up again)."""
    held: int
    waiting: float
    ttft_seconds: float | None
    ready: int
    loading: int


@dataclass(frozen=True)
class Recommendation:
    desired_replicas: int
    reason: Reason
    message: str
    state: ScalingState
    observation: Observation | None = field(default=None, compare=False)
    panic: bool = False


def _fresh(at: float | None, now: float, max_age: float) -> bool:
    return at is not None and now - at <= max_age


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _EPS))


def observe(inp: ScalingInput) -> Observation:
    """Combine the gateway's and the engines' views into one observation."""
    p = inp.policy
    ready = [r for r in inp.replicas if r.ready]
    loading = sum(1 for r in inp.replicas if r.loading and not r.ready)
    fresh = [
        r
        for r in ready
        if _fresh(r.observed_at, inp.now, p.metrics_max_age_seconds)
        and r.running is not None
        and r.waiting is not None
    ]
    views: list[float] = []
    gateway_fresh = False
    held = 0
    kv_load = waiting = 0.0
    if fresh:
        # Ready replicas without fresh metrics are assumed as loaded as the fresh ones.
        scale = len(ready) / len(fresh)
        waiting = sum(r.waiting or 0.0 for r in fresh) * scale
        views.append(sum((r.running or 0.0) + (r.waiting or 0.0) for r in fresh) * scale)
        kv_load = sum(r.kv_cache_usage or 0.0 for r in fresh) * scale
    gateway = inp.demand
    if gateway is not None and _fresh(gateway.observed_at, inp.now, p.metrics_max_age_seconds):
        held = gateway.held
        views.append(float(gateway.in_flight + gateway.held))
        gateway_fresh = True
    ttfts = [r.ttft_seconds for r in fresh if r.ttft_seconds is not None]
    ttft = sum(ttfts) / len(ttfts) if ttfts else None
    if not views:
        return Observation(None, None, False, 0, 0.0, None, len(ready), loading)
    concurrency = max(views)
    need = max(concurrency / p.target_concurrency, kv_load / p.target_kv_cache_usage)
    idle = gateway_fresh and concurrency <= _EPS
    return Observation(concurrency, need, idle, held, waiting, ttft, len(ready), loading)


def _window_mean(samples: tuple[Sample, ...], now: float, window: float) -> float:
    inside = [s.need for s in samples if now - s.at < window]
    return sum(inside) / len(inside) if inside else 0.0


def _clamp(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, n))


def _panic(
    inp: ScalingInput,
    obs: Observation,
    state: ScalingState,
    *,
    panic_need: float,
    stable_desired: int,
) -> tuple[float | None, int, Reason]:
    """Panic mode (Knative): a burst well above what the ready replicas can carry.

    Returns when panic started (`None`: not in panic), the raw count, and the reason.
    """
    p, now, current = inp.policy, inp.now, inp.current_replicas
    panic_desired = _ceil(panic_need)
    ttft_pressure = (
        p.target_ttft_seconds is not None
        and obs.ttft_seconds is not None
        and obs.ttft_seconds > p.target_ttft_seconds
        and obs.waiting > _EPS
        and obs.loading == 0
    )
    over = panic_need / max(1, obs.ready) >= p.panic_threshold or ttft_pressure
    panic_since = state.panic_since
    if over and panic_since is None:
        panic_since = now
    elif not over and panic_since is not None and now - panic_since >= p.stable_window_seconds:
        panic_since = None
    if panic_since is None:
        return None, stable_desired, Reason.STEADY

    raw = max(panic_desired, stable_desired, current)
    if ttft_pressure and raw <= obs.ready:
        return panic_since, obs.ready + 1, Reason.TTFT_PRESSURE
    return panic_since, raw, Reason.PANIC if raw > current else Reason.STEADY


def recommend(inp: ScalingInput, state: ScalingState) -> Recommendation:
    """The replica count for `inp.now`, its reason, and the state to pass next time."""
    rec = _recommend(inp, state)
    if rec.desired_replicas != inp.current_replicas:
        return replace(rec, state=replace(rec.state, last_scale_at=inp.now))
    return rec


def _recommend(inp: ScalingInput, state: ScalingState) -> Recommendation:
    p = inp.policy
    current = inp.current_replicas
    if not p.enabled:
        n = _clamp(p.spec_replicas, p.min_replicas, p.max_replicas)
        return Recommendation(n, Reason.DISABLED, "autoscaling is off", ScalingState())
    obs = observe(inp)
    now = inp.now

    if obs.need is None or obs.concurrency is None:
        # Hold: no fresh signal. Only the bounds and the loading guard may move the count.
        kept = ScalingState(
            samples=state.samples,
            recent=state.recent,
            panic_since=state.panic_since,
            last_scale_at=state.last_scale_at,
        )
        return _finish(inp, obs, current, Reason.METRICS_UNAVAILABLE, kept, panic=False)

    samples = (
        *(s for s in state.samples if now - s.at < p.stable_window_seconds),
        Sample(now, obs.need),
    )
    idle_since = (state.idle_since if state.idle_since is not None else now) if obs.idle else None
    stable_need = _window_mean(samples, now, p.stable_window_seconds)
    panic_need = _window_mean(samples, now, p.panic_window_seconds)
    stable_desired = _ceil(stable_need)
    if current > 0 and abs(stable_need / current - 1) <= p.tolerance:
        stable_desired = current
    panic_desired = _ceil(panic_need)

    # Scale from zero: a held or in-flight request at zero replicas starts one at once.
    if current == 0:
        if obs.concurrency > _EPS:
            want = max(1, _ceil(obs.need), panic_desired)
            nxt = ScalingState(samples, ((now, want),), None, None, state.last_scale_at)
            return _finish(inp, obs, want, Reason.SCALE_FROM_ZERO, nxt, panic=False)
        nxt = ScalingState(samples, (), None, idle_since, state.last_scale_at)
        return _finish(inp, obs, 0, Reason.IDLE, nxt, panic=False)

    panic_since, raw, reason = _panic(
        inp, obs, state, panic_need=panic_need, stable_desired=stable_desired
    )

    # Scale-down stabilization: the highest recommendation of the delay window wins.
    recent = (
        *(r for r in state.recent if now - r[0] < p.scale_down_delay_seconds),
        (now, raw),
    )
    desired = max(n for _, n in recent) if p.scale_down_delay_seconds > 0 else raw
    # The floor of a running model: one replica, unless a long enough idleness allows zero.
    zero_ok = (
        p.min_replicas == 0
        and p.scale_to_zero_after_seconds is not None
        and idle_since is not None
        and now - idle_since >= p.scale_to_zero_after_seconds
    )
    desired = max(desired, 0 if zero_ok else 1)
    cooling = state.last_scale_at is not None and now - state.last_scale_at < (
        p.stable_window_seconds
    )
    if desired < current and cooling:
        desired = current
    if reason is Reason.STEADY:
        if desired > current:
            reason = Reason.SCALE_UP
        elif desired < current:
            reason = Reason.SCALE_TO_ZERO if desired == 0 else Reason.SCALE_DOWN
        elif max(raw, 0 if zero_ok else 1) < current:
            reason = Reason.STABILIZING
    nxt = ScalingState(samples, recent, panic_since, idle_since, state.last_scale_at)
    return _finish(inp, obs, desired, reason, nxt, panic=panic_since is not None)


def _finish(
    inp: ScalingInput,
    obs: Observation,
    desired: int,
    reason: Reason,
    state: ScalingState,
    *,
    panic: bool,
) -> Recommendation:
    """Apply the step limits, the bounds and the loading guard, in that order."""
    p = inp.policy
    current = inp.current_replicas
    n = _clamp(desired, current - p.max_scale_down_step, current + p.max_scale_up_step)
    if n < current and obs.loading > 0:
        n, reason = current, Reason.LOADING
    bounded = _clamp(n, p.min_replicas, p.max_replicas)
    if bounded != n:
        reason = Reason.AT_MIN if bounded == p.min_replicas else Reason.AT_MAX
    elif n == p.max_replicas and desired > n:
        reason = Reason.AT_MAX
    if n == 0 and bounded == 0 and reason is Reason.SCALE_DOWN:
        reason = Reason.SCALE_TO_ZERO
    conc = "unknown" if obs.concurrency is None else f"{obs.concurrency:g}"
    message = (
        f"desired {bounded} (was {current}); concurrency {conc}, "
        f"ready {obs.ready}, loading {obs.loading}, held {obs.held}"
    )
    return Recommendation(bounded, reason, message, state, obs, panic)
