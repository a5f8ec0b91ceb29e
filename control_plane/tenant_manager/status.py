"""A `Tenant`'s status from one validation report (pure).

Conditions: `SpecValid` (the Tenant itself is consistent) and `Ready` (it can be used:
keys found and valid, every model it names exists). Phases: `Ready`, `NotReady` (fixed
outside the Tenant: create the Secret, fix a key, create the Model), `Failed` (fixed
only by editing the Tenant).
"""

from __future__ import annotations

from datetime import datetime

from control_plane.api import Condition, ConditionStatus, TenantPhase, TenantStatus
from control_plane.api.common import set_condition
from control_plane.api.constants import CONDITION_READY, CONDITION_SPEC_VALID
from control_plane.tenant_manager.validation import (
    SPEC_REASONS,
    TenantProblem,
    TenantReason,
    TenantReport,
)

MAX_LISTED_PROBLEMS = 5


def describe(problems: tuple[TenantProblem, ...] | list[TenantProblem]) -> str:
    """The problems as one message, the first few in full."""
    shown = "; ".join(str(p) for p in problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    return f"{shown}; and {more} more" if more > 0 else shown


def _cond(type_: str, ok: bool, reason: str, message: str, generation: int | None) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


def tenant_status(
    previous: TenantStatus | None,
    report: TenantReport,
    generation: int | None,
    *,
    now: datetime,
) -> TenantStatus:
    previous = previous or TenantStatus()
    spec_problems = [p for p in report.problems if p.reason in SPEC_REASONS]
    spec_ok = not spec_problems
    conditions = set_condition(
        list(previous.conditions),
        _cond(
            CONDITION_SPEC_VALID,
            spec_ok,
            "Valid" if spec_ok else spec_problems[0].reason,
            describe(spec_problems),
            generation,
        ),
        now=now,
    )
    if report.ready:
        reason = TenantReason.READY.value
        message = f"keys: {report.keys}; models allowed: {len(report.allowed_models)}"
    else:
        reason, message = report.problems[0].reason.value, describe(report.problems)
    conditions = set_condition(
        conditions, _cond(CONDITION_READY, report.ready, reason, message, generation), now=now
    )
    if report.ready:
        phase = TenantPhase.READY
    else:
        phase = TenantPhase.NOT_READY if spec_ok else TenantPhase.FAILED
    return TenantStatus(
        phase=phase,
        keys=report.keys,
        allowed_models=list(report.allowed_models),
        conditions=conditions,
        observed_generation=generation,
    )


def invalid_tenant_status(
    previous: TenantStatus | None,
    reason: TenantReason,
    message: str,
    generation: int | None,
    *,
    now: datetime,
) -> TenantStatus:
    """The types refuse the spec (the CRD schema normally does first): `Failed`."""
    previous = previous or TenantStatus()
    conditions = set_condition(
        list(previous.conditions),
        _cond(CONDITION_SPEC_VALID, False, reason, message, generation),
        now=now,
    )
    conditions = set_condition(
        conditions, _cond(CONDITION_READY, False, reason, message, generation), now=now
    )
    return previous.model_copy(
        update={
            "phase": TenantPhase.FAILED,
            "conditions": conditions,
            "observed_generation": generation,
        }
    )
