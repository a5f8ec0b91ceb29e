"""Which pods an adapter goes on (pure).

Shared by the Kubernetes operator and the embedded default: both observe their pods, build
`PodView`s, and ask `choose_pods`. Nothing here does I/O or reads the clock.

Rules:
- only ready pods of the adapter's base model whose sidecar answered are candidates;
- `placement.replicas: all` takes every candidate;
- a count N keeps the candidates that already hold the adapter (no needless moves), then
  fills up by policy: `fewest-adapters` (pods holding the fewest other adapters) or
  `least-loaded` (fewest requests in flight); ties are broken by a rendezvous hash of
  (adapter, pod), so several adapters with the same count spread over the pods instead
  of piling onto the alphabetically first one;
- the answer depends on the set of pods, never on the order they were listed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from control_plane.api import Placement, PlacementPolicy


class SidecarPhase(StrEnum):
    """An adapter's state as a sidecar reports it (`GET /adapters`)."""

    LOADING = "Loading"
    LOADED = "Loaded"
    FAILED = "Failed"


@dataclass(frozen=True)
class SidecarAdapter:
    """One adapter a sidecar knows about."""

    name: str
    phase: SidecarPhase
    source: str = ""
    sha256: str | None = None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class PodRef:
    """An inference pod and where its sidecar answers (before asking it anything)."""

    name: str
    model: str
    ready: bool
    sidecar_url: str
    in_flight: float = 0.0
    loaded_annotation: tuple[str, ...] | None = None
    """What the pod's loaded-adapters annotation says now (sorted), None when absent."""


@dataclass(frozen=True)
class PodView:
    """One inference pod as the control plane sees it.

    `adapters` is None when the sidecar could not be asked (unreachable): the pod is then
    not a candidate, and nothing is assumed about what it holds.
    """

    name: str
    model: str
    """The base `Model` this pod serves."""
    ready: bool
    adapters: Mapping[str, SidecarAdapter] | None = field(default_factory=dict)
    in_flight: float = 0.0
    """Requests in flight (for `least-loaded`); 0 when unknown."""

    @property
    def reachable(self) -> bool:
        return self.adapters is not None

    def holds(self, adapter: str) -> bool:
        """The sidecar knows the adapter (loaded, loading or failed)."""
        return self.adapters is not None and adapter in self.adapters


def is_candidate(pod: PodView, base_model: str) -> bool:
    return pod.model == base_model and pod.ready and pod.reachable


def rendezvous(adapter: str, pod: str) -> int:
    """A stable pseudo-random rank of `pod` for `adapter` (same in every process)."""
    digest = hashlib.sha256(f"{adapter}\0{pod}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _other_adapters(pod: PodView, adapter: str) -> int:
    if pod.adapters is None:
        return 0
    return sum(1 for name in pod.adapters if name != adapter)


def _policy_key(pod: PodView, adapter: str, policy: PlacementPolicy) -> tuple[float, int, str]:
    load = (
        float(_other_adapters(pod, adapter))
        if policy is PlacementPolicy.FEWEST_ADAPTERS
        else pod.in_flight
    )
    return (load, rendezvous(adapter, pod.name), pod.name)


def _holds_usefully(pod: PodView, adapter: str) -> bool:
    """The pod holds the adapter in a state worth keeping (loaded or on its way)."""
    if pod.adapters is None or adapter not in pod.adapters:
        return False
    return pod.adapters[adapter].phase is not SidecarPhase.FAILED


def desired_count(placement: Placement, candidates: int) -> int:
    """How many pods the adapter should be on: all candidates, or the asked-for count."""
    return candidates if placement.replicas == "all" else placement.replicas


def choose_pods(
    adapter: str, base_model: str, placement: Placement, pods: Iterable[PodView]
) -> tuple[str, ...]:
    """The names of the pods that should hold `adapter`, sorted.

    Never more than `placement.replicas` pods, never a pod of another base model, never a
    pod that is not ready or whose sidecar did not answer.
    """
    candidates = sorted((p for p in pods if is_candidate(p, base_model)), key=lambda p: p.name)
    if placement.replicas == "all":
        return tuple(p.name for p in candidates)
    wanted = placement.replicas
    holders = [p for p in candidates if _holds_usefully(p, adapter)]
    holders.sort(key=lambda p: (rendezvous(adapter, p.name), p.name))
    chosen = holders[:wanted]
    if len(chosen) < wanted:
        taken = {p.name for p in chosen}
        others = [p for p in candidates if p.name not in taken]
        others.sort(key=lambda p: _policy_key(p, adapter, placement.policy))
        chosen += others[: wanted - len(chosen)]
    return tuple(sorted(p.name for p in chosen))
