"""The routing policies as profiles: which filters, scorers (with weights) and picker each
runs, and how it names its decisions (the routing metric's `reason` label).

- `round-robin`: in turn (picker `InTurn`). Reason: in-turn.
- `least-load`: scorer load; picker `Best` (ties in turn). Reason: least-load.
- `prefix-affinity`: filter bounded load; scorers prefix owner (1), load (0.5); `Best`.
  Reasons: prefix-hit (the owner), prefix-overloaded (the owner was over the bound).
- `lora-affinity`: scorers LoRA tier (1), load (0.1); `Best`. Reasons: lora-active,
  lora-free-slot, lora-full (the winner's tier), least-load (a base model).
- `default`: filter bounded load; scorers LoRA tier (1), prefix ring (0.1); `Best`.
  Reasons: prefix-hit (the ring's owner), prefix-spill (a later replica on the ring).

The weights make the orders lexicographic where a policy says "first this, then that":
LoRA tiers are 0.2 apart, more than a secondary scorer weighted 0.1 can ever add. So the
default keeps every replica under `load_factor` x the mean load, prefers the best LoRA tier
among those, and among those the first on the prefix ring; `prefix-affinity` takes the
ring's owner unless it is over the bound, then the least loaded.

A new idea is one new scorer (scorers.py) and a line here; a new profile name must also
join the Model CRD's `routingPolicy` enum (control_plane/api/model.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from data_plane.gateway.routing.policy import POLICY_NAMES, Policy, RouteRequest
from data_plane.gateway.scheduling.filters import BoundedLoad
from data_plane.gateway.scheduling.framework import Profile, Weighted
from data_plane.gateway.scheduling.pickers import Best, InTurn
from data_plane.gateway.scheduling.scorers import Load, LoraTier, PrefixOwner, PrefixRing

PROFILE_NAMES = POLICY_NAMES


def _lora_reason(score: float) -> str:
    if score >= 1.0:
        return "lora-active"
    if score >= 0.8:
        return "lora-free-slot"
    return "lora-full"


def _in_turn(request: RouteRequest, winner: Sequence[float]) -> str:
    return "in-turn"


def _least_load(request: RouteRequest, winner: Sequence[float]) -> str:
    return "least-load"


def _prefix_owner(request: RouteRequest, winner: Sequence[float]) -> str:
    return "prefix-hit" if winner[0] >= 1.0 else "prefix-overloaded"


def _lora_tier(request: RouteRequest, winner: Sequence[float]) -> str:
    return "least-load" if request.adapter is None else _lora_reason(winner[0])


def _ring_rank(request: RouteRequest, winner: Sequence[float]) -> str:
    return "prefix-hit" if winner[1] >= 1.0 else "prefix-spill"


class RoundRobin(Profile):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("round-robin", picker=InTurn(), reason=_in_turn, alone="in-turn")


class LeastLoad(Profile):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(
            "least-load",
            scorers=[Weighted(Load(), 1.0)],
            picker=Best(),
            reason=_least_load,
            alone="least-load",
        )


class PrefixAffinity(Profile):
    __slots__ = ()

    def __init__(self, load_factor: float = 1.25, vnodes: int = 64) -> None:
        super().__init__(
            "prefix-affinity",
            filters=[BoundedLoad(load_factor)],
            scorers=[Weighted(PrefixOwner(vnodes), 1.0), Weighted(Load(), 0.5)],
            picker=Best(),
            reason=_prefix_owner,
            alone="prefix-hit",
        )


class LoraAffinity(Profile):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(
            "lora-affinity",
            scorers=[Weighted(LoraTier(), 1.0), Weighted(Load(), 0.1)],
            picker=Best(),
            reason=_lora_tier,
        )


class DefaultPolicy(Profile):
    """Bounded load, then the LoRA tier, then prefix ring order (see the module docstring)."""

    __slots__ = ()

    def __init__(self, load_factor: float = 1.25, vnodes: int = 64) -> None:
        super().__init__(
            "default",
            filters=[BoundedLoad(load_factor)],
            scorers=[Weighted(LoraTier(), 1.0), Weighted(PrefixRing(vnodes), 0.1)],
            picker=Best(),
            reason=_ring_rank,
            alone="prefix-hit",
        )


def make_profile(name: str, load_factor: float = 1.25) -> Policy:
    """A fresh profile (each Model gets its own: turns and ring caches are per model)."""
    if name == "round-robin":
        return RoundRobin()
    if name == "least-load":
        return LeastLoad()
    if name == "prefix-affinity":
        return PrefixAffinity(load_factor)
    if name == "lora-affinity":
        return LoraAffinity()
    if name == "default":
        return DefaultPolicy(load_factor)
    if name == "precise-prefix":  # KV-cache events; to become a profile of these plugins
        from data_plane.gateway.kv_events.policy import precise_prefix_policy

        return precise_prefix_policy(load_factor)
    raise ValueError(f"unknown routing policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")
