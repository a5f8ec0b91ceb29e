from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.api import LoraAdapterPhase, LoraAdapterStatus, Placement
from control_plane.api.common import find_condition
from control_plane.lora_manager.status import (
    PassResult,
    Refusal,
    RetryPolicy,
    invalid_status,
    is_failed,
    next_status,
    readmitted,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_failures=3, backoff_base_seconds=1, backoff_cap_seconds=10)
ALL = Placement()


def result(**kw: object) -> PassResult:
    base: dict[str, object] = {"generation": 1, "placement": ALL}
    base.update(kw)
    return PassResult(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("res", "phase", "reason"),
    [
        pytest.param(result(base_model_found=False), "Pending", "BaseModelNotFound", id="no-model"),
        pytest.param(result(), "Pending", "NoReadyPods", id="no-pods"),
        pytest.param(
            result(candidates=2, targets=("a", "b"), loaded={"a": None, "b": None}),
            "Ready",
            "Loaded",
            id="ready",
        ),
        pytest.param(result(candidates=2, targets=("a", "b")), "Loading", "Loading", id="loading"),
        pytest.param(
            result(candidates=1, targets=("a",), unreachable=("b",)),
            "Loading",
            "SidecarUnreachable",
            id="unreachable",
        ),
        pytest.param(
            result(candidates=1, targets=("a",), refusal=Refusal("a", "SourceNotFound", "x")),
            "Loading",
            "SourceNotFound",
            id="refused-once",
        ),
    ],
)
def test_first_status(res: PassResult, phase: str, reason: str) -> None:
    status = next_status(None, res, now=T0, policy=POLICY)
    assert status.phase == phase
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None
    assert ready.reason == reason
    assert status.observed_generation == 1


def test_degraded_after_ready_and_loaded_on_keeps_since() -> None:
    ready = next_status(
        None,
        result(candidates=2, targets=("a", "b"), loaded={"a": "h", "b": "h"}),
        now=T0,
        policy=POLICY,
    )
    later = T0 + timedelta(minutes=1)
    degraded = next_status(
        ready,
        result(candidates=2, targets=("a", "b"), loaded={"a": "h"}),
        now=later,
        policy=POLICY,
    )
    assert degraded.phase is LoraAdapterPhase.DEGRADED
    assert degraded.ready_replicas == 1
    assert degraded.desired_replicas == 2
    assert [(e.pod, e.since) for e in degraded.loaded_on] == [("a", T0)]


def test_bounded_failures_reach_failed_and_new_spec_starts_over() -> None:
    refused = result(candidates=1, targets=("a",), refusal=Refusal("a", "SourceNotFound", "gone"))
    status: LoraAdapterStatus | None = None
    for attempt in range(1, 4):
        status = next_status(status, refused, now=T0, policy=POLICY)
        assert status.failures == attempt
    assert status is not None
    assert status.phase is LoraAdapterPhase.FAILED
    cond = find_condition(status.conditions, "Ready")
    assert cond is not None
    assert cond.reason == "SourceNotFound"
    assert "gone" in cond.message
    assert is_failed(status, 1)
    assert not is_failed(status, 2)
    fresh = next_status(
        status, result(generation=2, candidates=1, targets=("a",)), now=T0, policy=POLICY
    )
    assert fresh.failures == 0
    assert fresh.phase is LoraAdapterPhase.LOADING


def test_success_resets_failures() -> None:
    status = next_status(
        None,
        result(candidates=1, targets=("a",), refusal=Refusal("a", "R", "m")),
        now=T0,
        policy=POLICY,
    )
    status = next_status(
        status, result(candidates=1, targets=("a",), loaded={"a": None}), now=T0, policy=POLICY
    )
    assert status.failures == 0
    assert status.phase is LoraAdapterPhase.READY


def test_invalid_spec() -> None:
    status = invalid_status(None, "spec.source: bad", 3, now=T0)
    assert status.phase is LoraAdapterPhase.FAILED
    valid = find_condition(status.conditions, "SpecValid")
    assert valid is not None
    assert valid.status == "False"


@given(st.integers(min_value=0, max_value=1000))
def test_backoff_is_bounded_and_monotonic(failures: int) -> None:
    assert 0 <= POLICY.delay(failures) <= POLICY.backoff_cap_seconds
    assert POLICY.delay(failures) <= POLICY.delay(failures + 1)


@given(
    loaded=st.sets(st.sampled_from(["a", "b", "c", "d"])),
    targets=st.sets(st.sampled_from(["a", "b", "c"])),
    replicas=st.one_of(st.just("all"), st.integers(1, 5)),
)
def test_status_counts(loaded: set[str], targets: set[str], replicas: int | str) -> None:
    placement = Placement.model_validate({"replicas": replicas})
    status = next_status(
        None,
        result(
            placement=placement,
            candidates=3,
            targets=tuple(sorted(targets)),
            loaded=dict.fromkeys(loaded),
        ),
        now=T0,
        policy=POLICY,
    )
    assert status.ready_replicas == len(loaded & targets)
    assert {e.pod for e in status.loaded_on} <= targets
    assert (status.phase is LoraAdapterPhase.READY) == (
        status.ready_replicas >= status.desired_replicas > 0
    )


@pytest.mark.parametrize(
    ("reason", "again"),
    [
        pytest.param("SourceNotAllowed", True, id="policy-may-change"),
        pytest.param("NameTaken", True, id="the-model-may-go"),
        pytest.param("InvalidSpec", False, id="only-a-new-spec-helps"),
    ],
)
def test_an_admission_refusal_is_readmitted_when_it_no_longer_holds(
    reason: str, again: bool
) -> None:
    refused = invalid_status(None, "spec.source is not allowed", 3, now=T0, reason=reason)
    assert is_failed(refused, 3)
    start = readmitted(refused)
    assert start is not None
    assert is_failed(start, 3) is not again
    if again:
        # the pass that follows places it and says the spec is valid again
        after = next_status(
            start,
            result(generation=3, candidates=1, targets=("a",), loaded={"a": None}),
            now=T0,
            policy=POLICY,
        )
        assert after.phase is LoraAdapterPhase.READY
        valid = find_condition(after.conditions, "SpecValid")
        assert valid is not None and valid.status == "True"


def test_readmitted_leaves_other_statuses_alone() -> None:
    assert readmitted(None) is None
    loading = next_status(None, result(candidates=1, targets=("a",)), now=T0, policy=POLICY)
    assert readmitted(loading) is loading
    gave_up = LoraAdapterStatus(phase=LoraAdapterPhase.FAILED, observed_generation=1)
    assert readmitted(gave_up) is gave_up  # refused by the sidecars: not an admission matter
