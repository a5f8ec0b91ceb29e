"""The autoscaler on Kubernetes: observe a Model's pods, decide, patch the Deployment.

One `tick` per Model per interval (the operator's periodic walk calls it, see `handlers`):
1. read the Model's Deployment (named after the Model; absent: nothing to scale yet) and
   its pods (label `serving.hoist.dev/model=<name>`); a pod is *ready* when its Ready
   condition is True, *loading* when it exists, is not terminating and is not ready;
2. let the `Decider` scrape the ready pods' engines and the gateway, and decide;
3. merge-patch the Deployment's `spec.replicas` when the count changes. The kopf handler
   writes `status.desiredReplicas` and `status.scalingReason` (only those two fields: the
   model manager owns the rest of the status).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from control_plane.api.constants import LABEL_MODEL, SIDECAR_PORT
from control_plane.api.model import ModelSpec
from control_plane.autoscaler.algorithm import Recommendation
from control_plane.autoscaler.decider import Decider, Replica
from control_plane.kube import Ref, apps_ref, core_ref

log = logging.getLogger(__name__)

Json = dict[str, Any]


class KubeApi(Protocol):
    """What the autoscaler needs of a Kubernetes client (`control_plane.kube.KubeClient`
    has this shape); `get` answers `None` for 404."""

    async def get(self, ref: Ref) -> Json | None: ...

    async def list(self, ref: Ref, *, label_selector: str | None = None) -> list[Json]: ...

    async def merge_patch(self, ref: Ref, body: Json) -> Json: ...


EngineUrl = Callable[[str, str], str]
"""(pod name, pod IP) -> the engine's metrics URL."""


def default_engine_url(_name: str, ip: str) -> str:
    """The engine's load as the pod's sidecar re-exports it (`engine_*` names), straight
    from the pod. The sidecar, not the engine: the network policies let only the gateway
    reach engines, and the controller reaches sidecars anyway to place adapters."""
    return f"http://{ip}:{SIDECAR_PORT}/metrics"


def read_pod(obj: Json, engine_url: EngineUrl = default_engine_url) -> Replica | None:
    """The autoscaler's view of a pod; `None` for pods that are terminating or finished."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") in {"Succeeded", "Failed"}:
        return None
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    name = str(meta.get("name"))
    ip = status.get("podIP")
    return Replica(
        key=str(meta.get("uid") or name),
        name=name,
        metrics_url=engine_url(name, ip) if ip else None,
        ready=ready,
        loading=not ready,
    )


def deployment_ref(namespace: str, name: str) -> Ref:
    return apps_ref(namespace, "deployments", name)


def pods_ref(namespace: str) -> Ref:
    return core_ref(namespace, "pods")


class KubeAutoscaler:
    def __init__(
        self, kube: KubeApi, decider: Decider, *, engine_url: EngineUrl = default_engine_url
    ) -> None:
        self._kube = kube
        self._decider = decider
        self._engine_url = engine_url

    def forget(self, namespace: str, name: str) -> None:
        self._decider.forget(namespace, name)

    async def tick(self, namespace: str, name: str, spec: ModelSpec) -> Recommendation | None:
        """Decide and apply once; `None` while the Model has no Deployment yet."""
        deployment = await self._kube.get(deployment_ref(namespace, name))
        if deployment is None:
            return None
        current = int((deployment.get("spec") or {}).get("replicas", 1))
        listed = await self._kube.list(pods_ref(namespace), label_selector=f"{LABEL_MODEL}={name}")
        replicas = [r for r in (read_pod(o, self._engine_url) for o in listed) if r is not None]
        rec = await self._decider.decide(namespace, name, spec, current=current, replicas=replicas)
        if rec.desired_replicas != current:
            await self._kube.merge_patch(
                deployment_ref(namespace, name), {"spec": {"replicas": rec.desired_replicas}}
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
        return rec
