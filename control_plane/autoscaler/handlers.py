"""The kopf shell around `KubeAutoscaler`: a tick per autoscaled Model, and forgetting.

`autoscale_pass(autoscaler)` is one Model's tick, which the operator's periodic walk
(`operator/walk.py`; no kopf timer, so Models carry no finalizer for it) runs over every
Model with `autoscaling.enabled`; `register(registry, autoscaler)` adds the handlers that
forget a Model's history. The operator's wiring builds the `KubeAutoscaler` (its
Kubernetes client and a `Decider` with an `EngineScraper`, a `GatewayDemandReader` and
`AutoscalerMetrics`) once at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from control_plane.api.constants import GROUP, MODEL_PLURAL, VERSION
from control_plane.api.model import ModelSpec
from control_plane.autoscaler.actuator import KubeAutoscaler


def autoscaling_enabled(doc: Mapping[str, Any]) -> bool:
    spec = doc.get("spec") or {}
    return bool((spec.get("autoscaling") or {}).get("enabled", False))


def autoscale_pass(
    autoscaler: KubeAutoscaler,
) -> Callable[[kopf.Body, kopf.Patch, kopf.Logger], Awaitable[None]]:
    """One autoscaling tick of one Model (the operator's walk runs it over every Model
    with `autoscaling.enabled`, every `autoscaler_interval_seconds`)."""

    async def autoscale(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        name, namespace = body.meta.get("name"), body.meta.get("namespace")
        if not name or not namespace or not autoscaling_enabled(body):
            return
        try:
            model_spec = ModelSpec.model_validate(dict(body.spec))
        except ValidationError as exc:
            # The model manager reports the bad spec in a condition; nothing to scale.
            logger.debug("not autoscaling %s: invalid spec: %s", name, exc.error_count())
            return
        rec = await autoscaler.tick(namespace, name, model_spec)
        if rec is None:
            return
        status = body.status
        if status.get("desiredReplicas") != rec.desired_replicas:
            patch.status["desiredReplicas"] = rec.desired_replicas
        if status.get("scalingReason") != rec.reason.value:
            patch.status["scalingReason"] = rec.reason.value

    return autoscale


def register(registry: kopf.OperatorRegistry, autoscaler: KubeAutoscaler) -> None:
    """Forget a Model's history when it goes or stops autoscaling (no finalizer needed)."""

    # A watch event, not `on.delete`: a delete handler without a finalizer never runs.
    @kopf.on.event(GROUP, VERSION, MODEL_PLURAL, registry=registry)
    async def forget(
        *, event: kopf.RawEvent, name: str | None, namespace: str | None, **_: Any
    ) -> None:
        if event.get("type") == "DELETED" and name and namespace:
            autoscaler.forget(namespace, name)

    @kopf.on.field(
        GROUP, VERSION, MODEL_PLURAL, registry=registry, field="spec.autoscaling.enabled"
    )
    async def disabled(
        *, new: Any, name: str | None, namespace: str | None, patch: kopf.Patch, **_: Any
    ) -> None:
        if name and namespace and not new:
            autoscaler.forget(namespace, name)
            patch.status["scalingReason"] = "AutoscalingDisabled"
