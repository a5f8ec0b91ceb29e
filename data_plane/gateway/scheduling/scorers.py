"""Scorers: how good each candidate is for the request, in [0, 1], higher is better (pure).

- `LoraTier`: llm-d's LoRA affinity tiers: the adapter active 1.0, a free adapter slot
  0.8, slots full 0.6 (the adapter waits for one); 1.0 everywhere for a base model.
- `PrefixRing`: consistent hashing over (adapter, prompt prefix): the ring's owner of the
  request's key scores 1, the next replicas on the ring less and less, so that requests
  sharing a prefix meet the engine's prefix cache, and their overflow always goes to the
  same second replica (which warms its cache too).
- `PrefixOwner`: 1 for the ring's owner, 0 for every other replica.
- `Load`: 1 / (1 + load): the least-loaded scores highest.
- `Headroom`: 1 - load / bound (the bounded-load bound): the room left under the bound.
- `HitsFirst`: a candidate its `hit` scorer scores above 0 beats every one it scores 0;
  hits rank by their weighted hit and extra scores, misses by the `fallback` scorer
  (precise-prefix: KV-cache hits with their headroom, else the prefix ring).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from data_plane.gateway.routing.policy import (
    ReplicaLoad,
    RouteRequest,
    load_bound,
    load_of,
    lora_score,
)
from data_plane.gateway.routing.ring import HashRing
from data_plane.gateway.scheduling.framework import Scorer, Weighted


class LoraTier:
    name = "lora-tier"

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        adapter = request.adapter
        return [lora_score(c, adapter) for c in candidates]


class Load:
    name = "load"

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        return [1.0 / (1 + load_of(c)) for c in candidates]


class Headroom:
    """1 - load / bound, with the bound of `BoundedLoad(load_factor)` (0 at or past it)."""

    name = "headroom"

    def __init__(self, load_factor: float) -> None:
        self.load_factor = load_factor

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        bound = load_bound(candidates, self.load_factor)
        return [max(0.0, 1 - load_of(c) / bound) for c in candidates]


HIT_FLOOR = 0.5
"""`HitsFirst` scores every hit at least this, every miss below it."""


class HitsFirst:
    """Hits (`hit.scorer` above 0) score in [0.5, 1]: 0.5 + 0.5 x the weighted mean of the
    hit score and the `extra` scores; misses score in [0, 0.45]: 0.45 x `fallback`. So a
    hit always wins over a miss, the weights order the hits, the fallback the misses."""

    name = "hits-first"

    def __init__(self, hit: Weighted, extra: Sequence[Weighted], fallback: Scorer) -> None:
        self.parts = (hit, *extra)
        self.fallback = fallback
        self._total_weight = sum(w.weight for w in self.parts)

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        per_part = [w.scorer.score(candidates, request) for w in self.parts]
        hits = per_part[0]
        if not any(h > 0 for h in hits):
            return [0.45 * s for s in self.fallback.score(candidates, request)]
        total = self._total_weight or 1.0
        fallback: Sequence[float] | None = None
        scores = []
        for i, h in enumerate(hits):
            if h > 0:
                mean = sum(w.weight * s[i] for w, s in zip(self.parts, per_part, strict=True))
                scores.append(HIT_FLOOR + 0.5 * mean / total)
            else:
                if fallback is None:
                    fallback = self.fallback.score(candidates, request)
                scores.append(0.45 * fallback[i])
        return scores


class Rings:
    """Rings per candidate set, built once and kept for the `size` sets last seen (a
    subset's ring is the full ring minus the missing members' points)."""

    def __init__(self, vnodes: int = 64, size: int = 32) -> None:
        self._vnodes = vnodes
        self._size = size
        self._rings: OrderedDict[tuple[str, ...], HashRing] = OrderedDict()

    def get(self, candidates: Sequence[ReplicaLoad]) -> HashRing:
        names = tuple(c.name for c in candidates)
        ring = self._rings.get(names)
        if ring is None:
            ring = HashRing(names, self._vnodes)
            self._rings[names] = ring
            if len(self._rings) > self._size:
                self._rings.popitem(last=False)
        else:
            self._rings.move_to_end(names)
        return ring


class PrefixRing:
    """The k-th replica on the ring from the request's key scores (n - k) / n."""

    name = "prefix-ring"

    def __init__(self, vnodes: int = 64) -> None:
        self._rings = Rings(vnodes)

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        n = len(candidates)
        ranks = self._rings.get(candidates).ranks(request.key_hash())
        return [(n - rank) / n for rank in ranks]


class PrefixOwner:
    name = "prefix-owner"

    def __init__(self, vnodes: int = 64) -> None:
        self._rings = Rings(vnodes)

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        scores = [0.0] * len(candidates)
        scores[self._rings.get(candidates).owner(request.key_hash())] = 1.0
        return scores
