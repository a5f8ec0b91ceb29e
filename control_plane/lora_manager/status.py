"""What a `LoraAdapter`'s status says, from one reconcile pass (pure).

Phases:
- `Pending`: nothing to load onto yet (no ready pod of the base model, or no such model);
- `Loading`: placed, not yet loaded anywhere (or first load still in progress);
- `Ready`: loaded on every pod it should be on;
- `Degraded`: loaded on some of them, after having been ready (a pod left, a sidecar is
  unreachable, a reload is in progress);
- `Failed`: the spec is invalid, or `RetryPolicy.max_failures` passes in a row saw the
  adapter refused; the `Ready` condition says why. A new spec (generation) starts over,
  and so does an admission refusal whose cause lay outside the spec (`readmitted`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from control_plane.api import (
    Condition,
    ConditionStatus,
    LoadedOn,
    LoraAdapterPhase,
    LoraAdapterStatus,
    Placement,
)
from control_plane.api.common import find_condition, set_condition
from control_plane.api.constants import CONDITION_READY, CONDITION_SPEC_VALID
from control_plane.lora_manager.placement import desired_count


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential back-off for adapters whose load is refused."""

    max_failures: int = 5
    """Passes in a row that saw a refusal before the adapter goes `Failed`."""
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 300.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next attempt after `failures` failed passes."""
        if failures <= 0:
            return 0.0
        return float(
            min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** min(failures - 1, 32))
        )


@dataclass(frozen=True)
class Refusal:
    """A sidecar refused the adapter (a permanent answer for this source)."""

    pod: str
    reason: str
    message: str


@dataclass(frozen=True)
class PassResult:
    """What one reconcile pass observed and did, as the status needs it."""

    generation: int | None
    placement: Placement
    base_model_found: bool = True
    candidates: int = 0
    """Ready pods of the base model (`placement: all` wants them all)."""
    targets: tuple[str, ...] = ()
    loaded: Mapping[str, str | None] = field(default_factory=dict)
    """Pod -> sha256 for the target pods where the adapter is loaded now."""
    refusal: Refusal | None = None
    unreachable: tuple[str, ...] = ()
    """Ready pods of the base model whose sidecar did not answer."""


def is_failed(status: LoraAdapterStatus | None, generation: int | None) -> bool:
    """Failed for this very spec: the shells stop trying until the spec changes."""
    return (
        status is not None
        and status.phase is LoraAdapterPhase.FAILED
        and status.observed_generation == generation
    )


ADMISSION_REASONS = frozenset({"SourceNotAllowed", "NameTaken"})
"""Refusals by the tenant boundary (`admission.py`): they depend on the Tenant's
`adapterSources` (or the operator's policy) and on the Models of the namespace, which may
change while the adapter's spec does not."""


def readmitted(status: LoraAdapterStatus | None) -> LoraAdapterStatus | None:
    """The status a pass starts from once admission accepts an adapter it had refused
    (`Failed` with `SpecValid=False` for an admission reason): `Pending`, no failures, so
    the pass places it and writes `SpecValid=True`. Any other status comes back as is."""
    if status is None or status.phase is not LoraAdapterPhase.FAILED:
        return status
    valid = find_condition(status.conditions, CONDITION_SPEC_VALID)
    if valid is None or valid.status != ConditionStatus.FALSE:
        return status
    if valid.reason not in ADMISSION_REASONS:
        return status
    return status.model_copy(update={"phase": LoraAdapterPhase.PENDING, "failures": 0})


def failures_so_far(status: LoraAdapterStatus | None, generation: int | None) -> int:
    """Consecutive failed passes for this generation (a new spec starts from zero)."""
    if status is None or status.observed_generation != generation:
        return 0
    return status.failures


def _ready(status: ConditionStatus, reason: str, message: str, generation: int | None) -> Condition:
    return Condition(
        type=CONDITION_READY,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


def _spec_valid(generation: int | None) -> Condition:
    return Condition(
        type=CONDITION_SPEC_VALID,
        status=ConditionStatus.TRUE,
        reason="Valid",
        message="",
        observed_generation=generation,
    )


def _loaded_on(
    previous: LoraAdapterStatus | None, loaded: Mapping[str, str | None], now: datetime
) -> list[LoadedOn]:
    before = {entry.pod: entry for entry in (previous.loaded_on if previous else [])}
    out: list[LoadedOn] = []
    for pod in sorted(loaded):
        old = before.get(pod)
        since = old.since if old is not None and old.sha256 == loaded[pod] else now
        out.append(LoadedOn(pod=pod, since=since, sha256=loaded[pod]))
    return out


def next_status(
    previous: LoraAdapterStatus | None,
    result: PassResult,
    *,
    now: datetime,
    policy: RetryPolicy,
) -> LoraAdapterStatus:
    """The status after one pass."""
    gen = result.generation
    conditions = list(previous.conditions) if previous else []
    conditions = set_condition(conditions, _spec_valid(gen), now=now)
    loaded = {pod: sha for pod, sha in result.loaded.items() if pod in result.targets}
    loaded_on = _loaded_on(previous, loaded, now)
    ready = len(loaded_on)
    desired = desired_count(result.placement, result.candidates)

    failures = failures_so_far(previous, gen)
    if result.refusal is not None:
        failures += 1
    elif desired > 0 and ready >= desired:
        failures = 0

    def status(phase: LoraAdapterPhase, cond: Condition) -> LoraAdapterStatus:
        return LoraAdapterStatus(
            phase=phase,
            loaded_on=loaded_on,
            ready_replicas=ready,
            desired_replicas=desired,
            failures=failures,
            conditions=set_condition(conditions, cond, now=now),
            observed_generation=gen,
        )

    if result.refusal is not None and failures >= policy.max_failures:
        refusal = result.refusal
        return status(
            LoraAdapterPhase.FAILED,
            _ready(
                ConditionStatus.FALSE,
                refusal.reason,
                f"refused {failures} times in a row, giving up until the spec changes; "
                f"last on {refusal.pod}: {refusal.message}",
                gen,
            ),
        )
    if not result.base_model_found:
        return status(
            LoraAdapterPhase.PENDING,
            _ready(ConditionStatus.FALSE, "BaseModelNotFound", "no Model of that name", gen),
        )
    if desired == 0:
        return status(
            LoraAdapterPhase.PENDING,
            _ready(ConditionStatus.FALSE, "NoReadyPods", "no ready pod of the base model yet", gen),
        )
    if ready >= desired:
        return status(
            LoraAdapterPhase.READY,
            _ready(ConditionStatus.TRUE, "Loaded", f"loaded on {ready} of {desired} pods", gen),
        )
    if result.refusal is not None:
        reason, message = (
            result.refusal.reason,
            f"refused on {result.refusal.pod} (attempt {failures} of {policy.max_failures},"
            f" retrying with back-off): {result.refusal.message}",
        )
    elif result.unreachable:
        reason = "SidecarUnreachable"
        message = f"could not reach the sidecar of {', '.join(result.unreachable)}"
    else:
        reason, message = "Loading", f"loaded on {ready} of {desired} pods"
    was_ready = previous is not None and previous.phase in (
        LoraAdapterPhase.READY,
        LoraAdapterPhase.DEGRADED,
    )
    phase = LoraAdapterPhase.DEGRADED if ready > 0 and was_ready else LoraAdapterPhase.LOADING
    return status(phase, _ready(ConditionStatus.FALSE, reason, message, gen))


def invalid_status(
    previous: LoraAdapterStatus | None,
    message: str,
    generation: int | None,
    *,
    now: datetime,
    reason: str = "InvalidSpec",
) -> LoraAdapterStatus:
    """The spec cannot be acted on: the API server's schema would normally refuse it
    (`InvalidSpec`), or the tenant boundary does (`SourceNotAllowed`, `NameTaken`)."""
    conditions = list(previous.conditions) if previous else []
    bad = Condition(
        type=CONDITION_SPEC_VALID,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )
    conditions = set_condition(conditions, bad, now=now)
    conditions = set_condition(
        conditions, _ready(ConditionStatus.FALSE, reason, message, generation), now=now
    )
    return LoraAdapterStatus(
        phase=LoraAdapterPhase.FAILED,
        conditions=conditions,
        observed_generation=generation,
    )


def ready_reason(status: LoraAdapterStatus) -> str | None:
    cond = find_condition(status.conditions, CONDITION_READY)
    return cond.reason if cond else None
