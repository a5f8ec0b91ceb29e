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
- `precise-prefix`: filter bounded load; scorers LoRA tier (1), `HitsFirst` (0.1) of the
  KV-cache score (`kv_weight`) with the load headroom (`load_weight`), falling back to the
  prefix ring; `Best`. Reasons: kv-hit (the winner holds part of the prompt, by the
  engines' KV-cache events), kv-miss-ring (no kept replica of its tier holds any: the ring
  decides, so a new prefix's first requests meet on one replica before its events come),
  kv-only (a single candidate). The KV index comes from the `SchedulingContext`.

The weights make the orders lexicographic where a policy says "first this, then that":
LoRA tiers are 0.2 apart, more than a secondary scorer weighted 0.1 can ever add. So the
default keeps every replica under `load_factor` x the mean load, prefers the best LoRA tier
among those, and among those the first on the prefix ring; `prefix-affinity` takes the
ring's owner unless it is over the bound, then the least loaded. `precise-prefix` is the
default with the ring demoted to a fallback: `HitsFirst` scores in [0, 1] (hits above 0.5,
misses below), so it orders replicas of one LoRA tier only.

A new idea is one new scorer (scorers.py) and a line here; a new profile name must also
join the Model CRD's `routingPolicy` enum (control_plane/api/model.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.prompt_tokens import SimulatorPromptTokens
from data_plane.gateway.routing.policy import POLICY_NAMES, Policy, RouteRequest
from data_plane.gateway.scheduling.context import SchedulingContext
from data_plane.gateway.scheduling.filters import BoundedLoad
from data_plane.gateway.scheduling.framework import Profile, Scorer, Weighted
from data_plane.gateway.scheduling.pickers import Best, InTurn
from data_plane.gateway.scheduling.scorers import (
    HIT_FLOOR,
    Headroom,
    HitsFirst,
    Load,
    LoraTier,
    PrefixOwner,
    PrefixRing,
)

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


def _kv_hit(request: RouteRequest, winner: Sequence[float]) -> str:
    return "kv-hit" if winner[1] >= HIT_FLOOR else "kv-miss-ring"


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


class PrecisePrefix(Profile):
    """Bounded load, then the LoRA tier, then the KV-cache hit, else the prefix ring."""

    __slots__ = ()

    def __init__(
        self,
        kv: Scorer,
        *,
        load_factor: float = 1.25,
        kv_weight: float = 1.0,
        load_weight: float = 0.5,
        vnodes: int = 64,
    ) -> None:
        cache = HitsFirst(
            Weighted(kv, kv_weight),
            [Weighted(Headroom(load_factor), load_weight)],
            fallback=PrefixRing(vnodes),
        )
        super().__init__(
            "precise-prefix",
            filters=[BoundedLoad(load_factor)],
            scorers=[Weighted(LoraTier(), 1.0), Weighted(cache, 0.1)],
            picker=Best(),
            reason=_kv_hit,
            alone="kv-only",
        )


def _precise_prefix(load_factor: float, context: SchedulingContext) -> PrecisePrefix:
    # here, not at the top: kv_events.scorer imports data_plane.gateway.routing, whose
    # package re-exports these profiles (a cycle when the scorer is imported first)
    from data_plane.gateway.kv_events.scorer import PrecisePrefixScorer

    index = context.kv_index if context.kv_index is not None else KvBlockIndex(1)
    kv = PrecisePrefixScorer(index, SimulatorPromptTokens(), context.kv_block_size)
    return PrecisePrefix(
        kv, load_factor=load_factor, kv_weight=context.kv_weight, load_weight=context.load_weight
    )


def make_profile(
    name: str, load_factor: float = 1.25, context: SchedulingContext | None = None
) -> Policy:
    """A fresh profile (each Model gets its own: turns and ring caches are per model);
    `context` carries what profiles share (the KV index; None: nothing shared)."""
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
    if name == "precise-prefix":
        return _precise_prefix(load_factor, context or SchedulingContext())
    raise ValueError(f"unknown routing policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")
