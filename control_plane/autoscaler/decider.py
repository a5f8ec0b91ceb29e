"""The substrate-neutral part of the autoscaler's shell: observe replicas, decide, record.

Both actuators (Kubernetes: `actuator.KubeAutoscaler`; embedded default:
`local.LocalAutoscaler`) list their replicas as `Replica` values and let a `Decider`
scrape them, read the gateway's demand, call `algorithm.recommend` with the state kept from
the last tick, and record the decision in metrics. The actuators only apply the count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from control_plane.api.model import ModelSpec
from control_plane.autoscaler.algorithm import (
    GatewayDemand,
    Recommendation,
    ReplicaSignals,
    ScalingInput,
    ScalingPolicy,
    ScalingState,
    recommend,
)
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineSample


class DemandSource(Protocol):
    async def demand(self, model: str, now: float) -> GatewayDemand | None:
        """The gateway's demand for `model`; `None`: not known now."""
        ...


class EngineSource(Protocol):
    async def scrape(self, key: str, url: str) -> tuple[EngineSample, float | None] | None:
        """`key` names the engine across scrapes (e.g. its pod's uid); `None`: unreadable."""
        ...


class NoDemand:
    """No gateway to read: the engines' view alone (no scale from zero; documented)."""

    async def demand(self, model: str, now: float) -> GatewayDemand | None:
        return None


@dataclass(frozen=True)
class Replica:
    """One replica as an actuator sees it."""

    key: str
    """Stable across ticks for the same engine (a pod's uid, a process's name)."""
    name: str
    metrics_url: str | None
    """The engine's `/metrics`; `None` when it has no address yet."""
    ready: bool
    loading: bool
    """Exists, not ready, not going away: never scaled down while any is."""


class Decider:
    """Keeps each model's scaling state between ticks; built once per process."""

    def __init__(
        self,
        engines: EngineSource,
        demand: DemandSource,
        metrics: AutoscalerMetrics,
        *,
        metrics_max_age_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engines = engines
        self._demand = demand
        self.metrics = metrics
        self._max_age = metrics_max_age_seconds
        self._clock = clock
        self._states: dict[tuple[str, str], ScalingState] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._states.pop((namespace, name), None)
        self.metrics.forget(namespace, name)

    async def _signals(self, replicas: Sequence[Replica], now: float) -> tuple[ReplicaSignals, ...]:
        async def one(r: Replica) -> ReplicaSignals:
            if not r.ready or not r.metrics_url:
                return ReplicaSignals(r.name, ready=r.ready, loading=r.loading)
            got = await self._engines.scrape(r.key, r.metrics_url)
            if got is None:
                self.metrics.scrape_failures.labels("engine").inc()
                return ReplicaSignals(r.name, ready=True)
            sample, ttft = got
            return ReplicaSignals(
                r.name,
                ready=True,
                running=sample.running,
                waiting=sample.waiting,
                kv_cache_usage=sample.kv_cache_usage,
                ttft_seconds=ttft,
                observed_at=now,
            )

        return tuple(await asyncio.gather(*(one(r) for r in replicas)))

    async def decide(
        self,
        namespace: str,
        name: str,
        spec: ModelSpec,
        *,
        current: int,
        replicas: Sequence[Replica],
    ) -> Recommendation:
        """The count `name` should have now, given `current` (what was last asked for)."""
        now = self._clock()
        signals, demand = await asyncio.gather(
            self._signals(replicas, now), self._demand.demand(name, now)
        )
        if demand is None and spec.autoscaling.enabled:
            self.metrics.scrape_failures.labels("gateway").inc()
        policy = ScalingPolicy.from_spec(spec, metrics_max_age_seconds=self._max_age)
        key = (namespace, name)
        rec = recommend(
            ScalingInput(now, current, signals, demand, policy),
            self._states.get(key, ScalingState()),
        )
        self._states[key] = rec.state
        self.metrics.record(namespace, name, rec, current=current, actual=len(replicas))
        return rec
