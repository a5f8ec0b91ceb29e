"""Scorers: how good each candidate is for the request, in [0, 1], higher is better (pure).

- `LoraTier`: llm-d's LoRA affinity tiers: the adapter active 1.0, a free adapter slot
  0.8, slots full 0.6 (the adapter waits for one); 1.0 everywhere for a base model.
- `PrefixRing`: consistent hashing over (adapter, prompt prefix): the ring's owner of the
  request's key scores 1, the next replicas on the ring less and less, so that requests
  sharing a prefix meet the engine's prefix cache, and their overflow always goes to the
  same second replica (which warms its cache too).
- `PrefixOwner`: 1 for the ring's owner, 0 for every other replica.
- `Load`: 1 / (1 + load): the least-loaded scores highest.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from data_plane.gateway.routing.policy import ReplicaLoad, RouteRequest, load_of, lora_score
from data_plane.gateway.routing.ring import HashRing


class LoraTier:
    name = "lora-tier"

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        adapter = request.adapter
        return [lora_score(c, adapter) for c in candidates]


class Load:
    name = "load"

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        return [1.0 / (1 + load_of(c)) for c in candidates]


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
