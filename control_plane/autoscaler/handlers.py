"""The kopf shell: a timer per Model with autoscaling enabled, around `KubeAutoscaler`.

`register(registry, autoscaler)` adds the handlers to an operator's registry; the
operator's wiring builds the `KubeAutoscaler` (its Kubernetes client and a `Decider` with
an `EngineScraper`, a `GatewayDemandReader` and `AutoscalerMetrics`) once at start-up.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from control_plane.api.constants import GROUP, MODEL_PLURAL, VERSION
from control_plane.api.model import ModelSpec
from control_plane.autoscaler.actuator import KubeAutoscaler


def autoscaling_enabled(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("autoscaling") or {}).get("enabled", False))


def register(
    registry: kopf.OperatorRegistry,
    autoscaler: KubeAutoscaler,
    *,
    interval_seconds: float = 2.0,
) -> None:
    @kopf.timer(
        GROUP,
        VERSION,
        MODEL_PLURAL,
        registry=registry,
        interval=interval_seconds,
        sharp=True,
        when=autoscaling_enabled,
        id="autoscale",
    )
    async def autoscale(
        *,
        spec: kopf.Spec,
        status: kopf.Status,
        name: str | None,
        namespace: str | None,
        patch: kopf.Patch,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        if not name or not namespace:
            return
        try:
            model_spec = ModelSpec.model_validate(dict(spec))
        except ValidationError as exc:
            # The model manager reports the bad spec in a condition; nothing to scale.
            logger.debug("not autoscaling %s: invalid spec: %s", name, exc.error_count())
            return
        rec = await autoscaler.tick(namespace, name, model_spec)
        if rec is None:
            return
        if status.get("desiredReplicas") != rec.desired_replicas:
            patch.status["desiredReplicas"] = rec.desired_replicas
        if status.get("scalingReason") != rec.reason.value:
            patch.status["scalingReason"] = rec.reason.value

    @kopf.on.delete(GROUP, VERSION, MODEL_PLURAL, registry=registry, optional=True)
    async def forget(*, name: str | None, namespace: str | None, **_: Any) -> None:
        if name and namespace:
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
