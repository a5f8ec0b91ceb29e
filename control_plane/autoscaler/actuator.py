"""The autoscaler on Kubernetes: observe a Model's pods and demand, decide, scale.

One `tick` per Model per interval (a kopf timer calls it, see `handlers`):
1. read the Model's Deployment (named after the Model; absent: nothing to scale yet) and
   its pods (label `serving.hoist.dev/model=<name>`); a pod is *ready* when its Ready
   condition is True, *loading* when it exists, is not terminating and is not ready;
2. scrape each ready pod's engine `/metrics` and the gateway's demand, concurrently, with
   timeouts (an unreadable source is a missing signal, never an error);
3. `algorithm.recommend` with the Model's policy and the state kept from the last tick;
4. merge-patch the Deployment's `spec.replicas` when the count changes, and record the
   decision in metrics. The kopf handler writes `status.desiredReplicas` and
   `status.scalingReason` (only those two fields: the model manager owns the rest).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from control_plane.api.constants import ENGINE_PORT, LABEL_MODEL
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

log = logging.getLogger(__name__)

Json = dict[str, Any]


class KubeApi(Protocol):
    """What the autoscaler needs of a Kubernetes client (`control_plane.kube.KubeClient`
    has this shape). Paths are API paths; `get` answers `None` for 404."""

    async def get(self, path: str) -> Json | None: ...

    async def list(self, path: str, *, label_selector: str | None = None) -> list[Json]: ...

    async def merge_patch(self, path: str, body: Json) -> Json: ...


class DemandSource(Protocol):
    async def demand(self, model: str, now: float) -> GatewayDemand | None: ...


class EngineSource(Protocol):
    async def scrape(self, key: str, url: str) -> tuple[EngineSample, float | None] | None:
        """`key` names the engine (its pod's uid) across scrapes; `None`: unreadable."""
        ...


class NoDemand:
    """No gateway to read: the engines' view alone (no scale from zero, documented)."""

    async def demand(self, model: str, now: float) -> GatewayDemand | None:
        return None


@dataclass(frozen=True)
class Pod:
    uid: str
    name: str
    ip: str | None
    ready: bool
    loading: bool


def read_pod(obj: Json) -> Pod | None:
    """The autoscaler's view of a pod; `None` for pods that are terminating or finished."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") in {"Succeeded", "Failed"}:
        return None
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return Pod(
        uid=str(meta.get("uid") or meta.get("name")),
        name=str(meta.get("name")),
        ip=status.get("podIP"),
        ready=ready,
        loading=not ready,
    )


def default_engine_url(pod: Pod) -> str:
    """The engine container's metrics, straight from the pod (not through the Service)."""
    return f"http://{pod.ip}:{ENGINE_PORT}/metrics"


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments/{quote(name)}"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods"


class KubeAutoscaler:
    """Keeps each Model's scaling state between ticks; built once per operator process."""

    def __init__(
        self,
        kube: KubeApi,
        engines: EngineSource,
        demand: DemandSource,
        metrics: AutoscalerMetrics,
        *,
        engine_url: Callable[[Pod], str] | None = None,
        metrics_max_age_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kube = kube
        self._engines = engines
        self._demand = demand
        self._metrics = metrics
        self._engine_url = engine_url or default_engine_url
        self._max_age = metrics_max_age_seconds
        self._clock = clock
        self._states: dict[tuple[str, str], ScalingState] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._states.pop((namespace, name), None)
        self._metrics.forget(namespace, name)

    async def _signals(self, pods: list[Pod], now: float) -> tuple[ReplicaSignals, ...]:
        async def one(pod: Pod) -> ReplicaSignals:
            if not pod.ready or not pod.ip:
                return ReplicaSignals(pod.name, ready=pod.ready, loading=pod.loading)
            got = await self._engines.scrape(pod.uid, self._engine_url(pod))
            if got is None:
                self._metrics.scrape_failures.labels("engine").inc()
                return ReplicaSignals(pod.name, ready=True)
            sample, ttft = got
            return ReplicaSignals(
                pod.name,
                ready=True,
                running=sample.running,
                waiting=sample.waiting,
                kv_cache_usage=sample.kv_cache_usage,
                ttft_seconds=ttft,
                observed_at=now,
            )

        return tuple(await asyncio.gather(*(one(p) for p in pods)))

    async def tick(self, namespace: str, name: str, spec: ModelSpec) -> Recommendation | None:
        """Decide and apply once; `None` while the Model has no Deployment yet."""
        deployment = await self._kube.get(deployment_path(namespace, name))
        if deployment is None:
            return None
        current = int((deployment.get("spec") or {}).get("replicas", 1))
        listed = await self._kube.list(pods_path(namespace), label_selector=f"{LABEL_MODEL}={name}")
        pods = [p for p in map(read_pod, listed) if p is not None]
        now = self._clock()
        signals, demand = await asyncio.gather(
            self._signals(pods, now), self._demand.demand(name, now)
        )
        if demand is None and spec.autoscaling.enabled:
            self._metrics.scrape_failures.labels("gateway").inc()
        policy = ScalingPolicy.from_spec(spec, metrics_max_age_seconds=self._max_age)
        key = (namespace, name)
        state = self._states.get(key, ScalingState())
        rec = recommend(ScalingInput(now, current, signals, demand, policy), state)
        self._states[key] = rec.state
        if rec.desired_replicas != current:
            await self._kube.merge_patch(
                deployment_path(namespace, name), {"spec": {"replicas": rec.desired_replicas}}
            )
            log.info(
                "scaled %s/%s from %d to %d: %s (%s)",
                namespace,
                name,
                current,
                rec.desired_replicas,
                rec.reason.value,
                rec.message,
            )
        self._metrics.record(namespace, name, rec, current=current, actual=len(pods))
        return rec
