"""A `Model`'s status from its Deployment, as the API server reports it (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control_plane.api import (
    Condition,
    ConditionStatus,
    Model,
    ModelPhase,
    ModelStatus,
    RoutingPolicy,
)
from control_plane.api.common import set_condition
from control_plane.api.constants import (
    CONDITION_KV_EVENT_ROUTING,
    CONDITION_PROGRESSING,
    CONDITION_READY,
    CONDITION_SPEC_VALID,
)
from control_plane.api.simulator_args import kv_events_problem
from control_plane.model_manager.engine_restarts import engine_restarts, engine_stable_condition
from control_plane.model_manager.resources import desired_replicas

Json = dict[str, Any]


def _int(doc: Json, key: str) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) else 0


def _deployment_condition(deployment: Json, type_: str) -> Json | None:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def _cond(
    type_: str, status: ConditionStatus, reason: str, message: str, gen: int | None
) -> Condition:
    return Condition(
        type=type_, status=status, reason=reason, message=message, observed_generation=gen
    )


def model_status(
    model: Model, deployment: Json | None, *, now: datetime, pods: list[Json] | None = None
) -> ModelStatus:
    """Phase, replica counts and conditions mirroring the Deployment; with `pods` (the
    Model's inference pods as listed), engine restarts too (else the previous ones)."""
    gen = model.metadata.generation
    previous = model.status or ModelStatus()
    desired = desired_replicas(model)
    dstatus: Json = (deployment or {}).get("status") or {}
    replicas, ready = _int(dstatus, "replicas"), _int(dstatus, "readyReplicas")
    updated = _int(dstatus, "updatedReplicas")
    conditions = set_condition(
        list(previous.conditions),
        _cond(CONDITION_SPEC_VALID, ConditionStatus.TRUE, "Valid", "", gen),
        now=now,
    )

    failure = _deployment_condition(deployment or {}, "ReplicaFailure")
    stuck = _deployment_condition(deployment or {}, "Progressing")
    if deployment is None:
        phase, reason, message = ModelPhase.PENDING, "DeploymentMissing", "creating the Deployment"
    elif failure is not None and failure.get("status") == "True":
        phase, reason = ModelPhase.FAILED, str(failure.get("reason") or "ReplicaFailure")
        message = str(failure.get("message") or "pods cannot be created")
    elif stuck is not None and stuck.get("reason") == "ProgressDeadlineExceeded":
        phase, reason = ModelPhase.FAILED, "ProgressDeadlineExceeded"
        message = str(stuck.get("message") or "the rollout did not progress in time")
    elif desired == 0:
        phase, reason, message = ModelPhase.SCALED_TO_ZERO, "ScaledToZero", "no replicas wanted"
    elif ready >= desired:
        phase, reason, message = ModelPhase.READY, "ReplicasReady", f"{ready}/{desired} ready"
    elif ready == 0:
        phase, reason = ModelPhase.LOADING, "ReplicasStarting"
        message = f"0/{desired} ready; engines are loading"
    else:
        phase, reason, message = (
            ModelPhase.DEGRADED,
            "ReplicasUnavailable",
            f"{ready}/{desired} ready",
        )
    conditions = set_condition(
        conditions,
        _cond(
            CONDITION_READY,
            ConditionStatus.TRUE if phase is ModelPhase.READY else ConditionStatus.FALSE,
            reason,
            message,
            gen,
        ),
        now=now,
    )
    rolling = deployment is not None and (updated < replicas or replicas != desired)
    conditions = set_condition(
        conditions,
        _cond(
            CONDITION_PROGRESSING,
            ConditionStatus.TRUE if rolling else ConditionStatus.FALSE,
            "RollingOut" if rolling else "Complete",
            f"{updated}/{desired} replicas on the current spec",
            gen,
        ),
        now=now,
    )
    conditions = _kv_event_routing(model, conditions, gen, now)
    restarts = previous.engine_restarts
    if pods is not None:
        seen = engine_restarts(pods)
        restarts = sum(r.count for r in seen)
        stable = engine_stable_condition(seen, now=now, generation=gen)
        conditions = set_condition(conditions, stable, now=now)
    return ModelStatus(
        phase=phase,
        replicas=replicas,
        ready_replicas=ready,
        desired_replicas=desired,
        scaling_reason=previous.scaling_reason,
        engine_restarts=restarts,
        conditions=conditions,
        observed_generation=gen,
    )


def _kv_event_routing(
    model: Model, conditions: list[Condition], gen: int | None, now: datetime
) -> list[Condition]:
    """`KvEventRouting` on a `precise-prefix` Model (False where its engine publishes no
    events); gone from any other."""
    if model.spec.routing_policy is not RoutingPolicy.PRECISE_PREFIX:
        return [c for c in conditions if c.type != CONDITION_KV_EVENT_ROUTING]
    problem = kv_events_problem(model)
    if problem is None:
        condition = _cond(
            CONDITION_KV_EVENT_ROUTING,
            ConditionStatus.TRUE,
            "EventsPublished",
            "the engines publish KV-cache events; the gateway routes by them",
            gen,
        )
    else:
        condition = _cond(
            CONDITION_KV_EVENT_ROUTING, ConditionStatus.FALSE, "NoEvents", problem, gen
        )
    return set_condition(conditions, condition, now=now)


def invalid_model_status(
    previous: ModelStatus | None, message: str, generation: int | None, *, now: datetime
) -> ModelStatus:
    previous = previous or ModelStatus()
    conditions = set_condition(
        list(previous.conditions),
        _cond(CONDITION_SPEC_VALID, ConditionStatus.FALSE, "InvalidSpec", message, generation),
        now=now,
    )
    conditions = set_condition(
        conditions,
        _cond(CONDITION_READY, ConditionStatus.FALSE, "InvalidSpec", message, generation),
        now=now,
    )
    return previous.model_copy(
        update={
            "phase": ModelPhase.FAILED,
            "conditions": conditions,
            "observed_generation": generation,
        }
    )
