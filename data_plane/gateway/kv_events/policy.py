"""`precise-prefix`: a temporary routing policy built on the precise prefix scorer, to be
moved into the scheduling pipeline as a profile (bounded-load filter, LoRA-tier filter,
weighted scorers, ring picker).

1. Bounded load, as `default`: no replica above `load_factor` x the mean load.
2. LoRA tier, as `default`: among those, the replicas with the best tier for the adapter.
3. Among those, the best `kv_weight x precise prefix score + load_weight x (1 - load/bound)`.
   When no eligible replica holds any of the prompt (a new prefix, or events not in yet),
   the prefix ring decides instead, as in `default`, so that a new prefix's first requests
   meet on one replica before its events arrive.

The follower (subscriptions, I/O) is told the candidates on each decision; the decision
itself reads only the index.
"""

from __future__ import annotations

from collections.abc import Sequence

from data_plane.gateway.kv_events.follower import KvEventFollower
from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.prompt_tokens import SimulatorPromptTokens
from data_plane.gateway.kv_events.scorer import PrecisePrefixScorer
from data_plane.gateway.kv_events.settings import KvEventsSettings
from data_plane.gateway.routing.policy import (
    ReplicaLoad,
    RouteRequest,
    load_bound,
    load_of,
    lora_score,
)
from data_plane.gateway.routing.ring import HashRing


class PrecisePrefixPolicy:
    name = "precise-prefix"

    def __init__(
        self,
        scorer: PrecisePrefixScorer,
        *,
        load_factor: float = 1.25,
        kv_weight: float = 1.0,
        load_weight: float = 0.5,
        follower: KvEventFollower | None = None,
        vnodes: int = 64,
    ) -> None:
        if load_factor < 1:
            raise ValueError("load_factor must be at least 1")
        self.scorer = scorer
        self.load_factor = load_factor
        self.kv_weight = kv_weight
        self.load_weight = load_weight
        self.follower = follower
        self._vnodes = vnodes
        self._ring: tuple[tuple[str, ...], HashRing] | None = None

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        if self.follower is not None:
            self.follower.follow(candidates)
        if len(candidates) == 1:
            return 0, "kv-only"
        bound = load_bound(candidates, self.load_factor)
        loads = [load_of(c) for c in candidates]
        eligible = [load + 1 <= bound for load in loads]
        if request.adapter is not None:
            tiers = [lora_score(c, request.adapter) for c in candidates]
            best_tier = max(t for t, ok in zip(tiers, eligible, strict=True) if ok)
            eligible = [ok and t == best_tier for t, ok in zip(tiers, eligible, strict=True)]
        kv = self.scorer.score(candidates, request)
        if any(s > 0 for s, ok in zip(kv, eligible, strict=True) if ok):
            best, best_total = -1, -1.0
            for i, ok in enumerate(eligible):
                if not ok:
                    continue
                total = self.kv_weight * kv[i] + self.load_weight * (1 - loads[i] / bound)
                if total > best_total:
                    best, best_total = i, total
            return best, "kv-hit"
        for index in self._ring_for(candidates).walk(request.key_hash()):
            if eligible[index]:
                return index, "kv-miss-ring"
        raise AssertionError("the load bound always leaves one replica eligible")

    def _ring_for(self, candidates: Sequence[ReplicaLoad]) -> HashRing:
        names = tuple(c.name for c in candidates)
        if self._ring is None or self._ring[0] != names:
            self._ring = (names, HashRing(names, self._vnodes))
        return self._ring[1]


def precise_prefix_policy(load_factor: float) -> PrecisePrefixPolicy:
    """The policy with its index and event follower, configured from the environment."""
    settings = KvEventsSettings()
    index = KvBlockIndex(settings.max_blocks_per_replica)
    follower = KvEventFollower(
        index, port_offset=settings.port_offset, topic=settings.topic, idle_s=settings.idle_s
    )
    scorer = PrecisePrefixScorer(index, SimulatorPromptTokens(), settings.block_size)
    return PrecisePrefixPolicy(
        scorer,
        load_factor=load_factor,
        kv_weight=settings.kv_weight,
        load_weight=settings.load_weight,
        follower=follower,
    )
