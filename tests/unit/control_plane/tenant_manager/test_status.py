"""A Tenant's status from a validation report: phase, conditions, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane.api import ConditionStatus, TenantPhase, TenantStatus
from control_plane.api.common import find_condition
from control_plane.operator.bodies import dump_status
from control_plane.tenant_manager.status import (
    MAX_LISTED_PROBLEMS,
    describe,
    invalid_tenant_status,
    tenant_status,
)
from control_plane.tenant_manager.validation import TenantProblem, TenantReason, TenantReport
from data_plane.gateway.tenancy.secrets import from_objects

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECRET_MISSING = TenantProblem(TenantReason.SECRET_NOT_FOUND, "spec.apiKeysSecret.name", "gone")
BAD_QUOTA = TenantProblem(TenantReason.INVALID_QUOTA, "spec.quotas.tokensPerMinute", "too low")


def report(*problems: TenantProblem, keys: int = 2) -> TenantReport:
    return TenantReport(problems=problems, keys=keys, allowed_models=("llama",))


@pytest.mark.parametrize(
    ("problems", "phase", "ready_reason", "spec_valid"),
    [
        pytest.param((), TenantPhase.READY, "TenantReady", "Valid", id="ready"),
        pytest.param((SECRET_MISSING,), TenantPhase.NOT_READY, "SecretNotFound", "Valid",
                     id="fixed-outside-the-tenant"),
        pytest.param((BAD_QUOTA, SECRET_MISSING), TenantPhase.FAILED, "InvalidQuota",
                     "InvalidQuota", id="fixed-only-by-editing-it"),
    ],
)  # fmt: skip
def test_phase_and_conditions(
    problems: tuple[TenantProblem, ...], phase: TenantPhase, ready_reason: str, spec_valid: str
) -> None:
    status = tenant_status(None, report(*problems), 3, now=T0)
    assert status.phase is phase
    assert status.keys == 2
    assert status.allowed_models == ["llama"]
    assert status.observed_generation == 3
    ready = find_condition(status.conditions, "Ready")
    spec = find_condition(status.conditions, "SpecValid")
    assert ready is not None and spec is not None
    assert ready.reason == ready_reason
    assert ready.status is (ConditionStatus.TRUE if not problems else ConditionStatus.FALSE)
    assert spec.reason == spec_valid
    assert ready.observed_generation == spec.observed_generation == 3
    if problems:
        assert ready.message == describe(problems)
    else:
        assert ready.message == "keys: 2; models allowed: 1"


def test_transition_time_moves_only_when_readiness_changes() -> None:
    first = tenant_status(None, report(SECRET_MISSING), 1, now=T0)
    same = tenant_status(first, report(SECRET_MISSING), 1, now=T0 + timedelta(minutes=1))
    assert same == first
    fixed = tenant_status(same, report(), 1, now=T0 + timedelta(minutes=2))
    ready = find_condition(fixed.conditions, "Ready")
    spec = find_condition(fixed.conditions, "SpecValid")
    assert ready is not None and ready.last_transition_time == T0 + timedelta(minutes=2)
    assert spec is not None and spec.last_transition_time == T0


def test_long_problem_lists_are_cut() -> None:
    many = [
        TenantProblem(TenantReason.UNKNOWN_MODEL, f"spec.allowedModels[{i}]", "x")
        for i in range(MAX_LISTED_PROBLEMS + 3)
    ]
    text = describe(many)
    assert text.endswith("; and 3 more")
    assert text.count("spec.allowedModels") == MAX_LISTED_PROBLEMS


def test_invalid_spec_keeps_the_last_counts() -> None:
    previous = tenant_status(None, report(), 1, now=T0)
    status = invalid_tenant_status(
        previous, TenantReason.INVALID_SPEC, "spec.weight: too small", 2, now=T0
    )
    assert status.phase is TenantPhase.FAILED
    assert status.observed_generation == 2
    assert status.keys == 2
    for type_ in ("Ready", "SpecValid"):
        cond = find_condition(status.conditions, type_)
        assert cond is not None and cond.reason == "InvalidSpec"
        assert cond.message == "spec.weight: too small"
    assert isinstance(status, TenantStatus)


def test_the_gateway_still_reads_a_tenant_carrying_the_status_the_operator_writes() -> None:
    """The gateway validates whole Tenant documents, status included."""
    status = tenant_status(None, report(SECRET_MISSING), 1, now=T0)
    doc = {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "team-a", "generation": 1},
        "spec": {"weight": 3},
        "status": dump_status(status),
    }
    policies, _, problems = from_objects([doc], {})
    assert problems == []
    assert policies["team-a"].weight == 3
