"""What to load and unload, on which pod, for one adapter (pure).

Input: the adapter's spec and the pods as observed (`PodView`); output: an `AdapterPlan`
the shells execute through the sidecars. Both substrates call these functions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from control_plane.api import LoraAdapterSpec
from control_plane.lora_manager.placement import (
    PodView,
    SidecarAdapter,
    SidecarPhase,
    choose_pods,
)


@dataclass(frozen=True)
class AdapterPlan:
    adapter: str
    targets: tuple[str, ...]
    """Pods that should hold the adapter, sorted."""
    loads: tuple[str, ...]
    """Target pods whose sidecar must be sent `PUT /adapters/{adapter}`."""
    unloads: tuple[str, ...]
    """Pods whose sidecar must be sent `DELETE /adapters/{adapter}`."""
    drift: tuple[str, ...]
    """Pods of `loads` that the previous status listed as holding the adapter: it vanished
    (engine or sidecar restart, someone unloaded it by hand)."""


def needs_load(observed: SidecarAdapter | None, spec: LoraAdapterSpec, *, retry: bool) -> bool:
    """Whether a target pod must be (re)sent the adapter."""
    if observed is None:
        return True
    if observed.source != spec.source:
        return True
    if spec.sha256 is not None and observed.sha256 not in (None, spec.sha256):
        return True
    return observed.phase is SidecarPhase.FAILED and retry


def plan_adapter(
    name: str,
    spec: LoraAdapterSpec,
    pods: Sequence[PodView],
    *,
    previously_loaded: Collection[str] = (),
    retry_failed: bool = True,
) -> AdapterPlan:
    """Place `name` and say what each sidecar must do.

    `retry_failed=False` (during a back-off) leaves pods whose sidecar refused the adapter
    alone. Pods of the base model that are not ready keep what they hold (they may be
    restarting their engine); ready pods that are not targets and pods of other models lose
    the adapter.
    """
    targets = choose_pods(name, spec.base_model, spec.placement, pods)
    by_name = {p.name: p for p in pods}
    loads = tuple(
        pod
        for pod in targets
        if needs_load(_observed(by_name[pod], name), spec, retry=retry_failed)
    )
    unloads = tuple(
        sorted(
            p.name
            for p in pods
            if p.name not in targets and p.holds(name) and (p.ready or p.model != spec.base_model)
        )
    )
    drift = tuple(
        pod
        for pod in loads
        if pod in previously_loaded
        and (
            (seen := _observed(by_name[pod], name)) is None or seen.phase is not SidecarPhase.LOADED
        )
    )
    return AdapterPlan(name, targets, loads, unloads, drift)


def _observed(pod: PodView, adapter: str) -> SidecarAdapter | None:
    return None if pod.adapters is None else pod.adapters.get(adapter)


@dataclass(frozen=True)
class RemovalPlan:
    unloads: tuple[str, ...]
    """Reachable pods whose sidecar knows the adapter."""
    unknown: tuple[str, ...]
    """Ready pods whose sidecar did not answer: the adapter may still be there."""

    @property
    def complete(self) -> bool:
        return not self.unknown


def plan_removal(name: str, pods: Iterable[PodView]) -> RemovalPlan:
    """Unload `name` everywhere (deletion)."""
    pods = list(pods)
    return RemovalPlan(
        unloads=tuple(sorted(p.name for p in pods if p.holds(name))),
        unknown=tuple(sorted(p.name for p in pods if p.ready and not p.reachable)),
    )


def orphans(declared: Mapping[str, Collection[str]], pod: PodView) -> tuple[str, ...]:
    """Adapters the pod holds that no declaration puts on its model (e.g. deleted while
    the pod was away): `declared` maps a base model to its adapters' names."""
    if pod.adapters is None:
        return ()
    wanted = declared.get(pod.model, ())
    return tuple(sorted(name for name in pod.adapters if name not in wanted))


def assume_placed(pods: Sequence[PodView], plan: AdapterPlan) -> list[PodView]:
    """The pods as they will look once `plan` is applied, so that the next adapter placed
    in the same pass counts this one (keeps `fewest-adapters` spreading within a pass)."""
    out: list[PodView] = []
    for pod in pods:
        if pod.adapters is None:
            out.append(pod)
            continue
        adapters = dict(pod.adapters)
        if pod.name in plan.targets and plan.adapter not in adapters:
            adapters[plan.adapter] = SidecarAdapter(plan.adapter, SidecarPhase.LOADING)
        if pod.name in plan.unloads:
            adapters.pop(plan.adapter, None)
        out.append(replace(pod, adapters=adapters))
    return out


def loaded_after(pod: PodView, adapter: str, *, loaded_now: bool) -> tuple[str, ...] | None:
    """The adapters `pod` holds loaded once this pass for `adapter` is done (sorted), or
    None when the sidecar could not be asked. What the pod's
    `serving.hoist.dev/loaded-adapters` annotation says, for the gateway."""
    if pod.adapters is None:
        return None
    names = {n for n, a in pod.adapters.items() if a.phase is SidecarPhase.LOADED}
    if loaded_now:
        names.add(adapter)
    else:
        names.discard(adapter)
    return tuple(sorted(names))
