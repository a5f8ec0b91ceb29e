"""The routing policies and the combined default.

Load is what a replica has to do before it can start a new request: the gateway's own
requests in flight there plus the engine's waiting queue (from its metrics).

- round-robin: in turn; counts differ by at most one over a fixed candidate set.
- least-load: the smallest load; ties broken in turn so that idle replicas share.
- prefix-affinity: consistent hashing over (adapter, prompt prefix) so that requests that
  share a prefix meet the engine's prefix cache; when the owner's load exceeds the bound
  (`load_factor` x the mean, KubeAI's CHWBL), the least-loaded replica takes it.
- lora-affinity: a replica where the adapter is active, then one with a free adapter
  slot (llm-d's scores: active 1.0, free slot 0.8, waiting 0.6, full 0), then least load.
- default: the bounded-load rule first (no replica above `load_factor` x mean), among
  those the best LoRA tier, and among those the first on the prefix ring (CHWBL walk).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from data_plane.gateway.routing.ring import HashRing, stable_hash

POLICY_NAMES = (
    "default",
    "round-robin",
    "least-load",
    "prefix-affinity",
    "lora-affinity",
    "precise-prefix",  # temporary: data_plane/gateway/kv_events/policy.py
)


class ReplicaLoad(Protocol):
    """What a policy may read about a replica."""

    @property
    def name(self) -> str: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def waiting(self) -> int:
        """The engine's waiting queue, from its last scraped metrics (0 when unknown)."""
        ...

    @property
    def running_adapters(self) -> frozenset[str] | None:
        """Adapters active on the accelerator now; None when the engine does not say."""
        ...

    @property
    def max_loras(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RouteRequest:
    adapter: str | None
    prefix: str
    body: bytes | None = None
    """The request body as the client sent it, for scorers that read the whole prompt
    (precise-prefix tokenizes it); None when the caller does not pass it."""

    def key_hash(self) -> int:
        return stable_hash(f"{self.adapter or ''}\x00{self.prefix}".encode())


class Policy(Protocol):
    name: str

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        """The index in `candidates` to use and a reason (a short, bounded label).

        Precondition: `candidates` is non-empty and holds only routable replicas.
        """
        ...


def load_of(replica: ReplicaLoad) -> int:
    return replica.in_flight + replica.waiting


def lora_score(replica: ReplicaLoad, adapter: str | None) -> float:
    """llm-d's LoRA affinity: active 1.0, free slot 0.8, full 0.6 (the adapter waits)."""
    if adapter is None:
        return 1.0
    running = replica.running_adapters
    if running is None:
        return 0.8  # the engine does not say: every replica with the adapter loaded is alike
    if adapter in running:
        return 1.0
    if len(running) < replica.max_loras:
        return 0.8
    return 0.6


class RoundRobin:
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        index = self._next % len(candidates)
        self._next += 1
        return index, "in-turn"


class LeastLoad:
    name = "least-load"

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        return self.pick(candidates, range(len(candidates))), "least-load"

    def pick(self, candidates: Sequence[ReplicaLoad], among: Sequence[int]) -> int:
        """The least-loaded of `among`; ties go in turn so that equal replicas share."""
        self._turn += 1
        n = len(among)
        best = among[self._turn % n]
        best_load = load_of(candidates[best])
        for k in range(1, n):
            i = among[(self._turn + k) % n]
            load = load_of(candidates[i])
            if load < best_load:
                best, best_load = i, load
        return best


class _Rings:
    """Rings per candidate set, built once; a subset's ring is the full ring minus members."""

    def __init__(self, vnodes: int, size: int = 32) -> None:
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


def load_bound(candidates: Sequence[ReplicaLoad], load_factor: float) -> int:
    """The most load a replica may have after taking one more request (CHWBL's bound)."""
    total = sum(load_of(c) for c in candidates) + 1
    return max(1, math.ceil(total / len(candidates) * load_factor))


class PrefixAffinity:
    name = "prefix-affinity"

    def __init__(self, load_factor: float = 1.25, vnodes: int = 64) -> None:
        if load_factor < 1:
            raise ValueError("load_factor must be at least 1")
        self.load_factor = load_factor
        self._rings = _Rings(vnodes)
        self._least = LeastLoad()

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        if len(candidates) == 1:
            return 0, "prefix-hit"
        owner = self._rings.get(candidates).owner(request.key_hash())
        if load_of(candidates[owner]) + 1 <= load_bound(candidates, self.load_factor):
            return owner, "prefix-hit"
        return self._least.pick(candidates, range(len(candidates))), "prefix-overloaded"


class LoraAffinity:
    name = "lora-affinity"

    def __init__(self) -> None:
        self._least = LeastLoad()

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        if request.adapter is None:
            return self._least.pick(candidates, range(len(candidates))), "least-load"
        scores = [lora_score(c, request.adapter) for c in candidates]
        best = max(scores)
        among = [i for i, s in enumerate(scores) if s == best]
        return self._least.pick(candidates, among), _lora_reason(best)


def _lora_reason(score: float) -> str:
    if score >= 1.0:
        return "lora-active"
    if score >= 0.8:
        return "lora-free-slot"
    return "lora-full"


class DefaultPolicy:
    """Bounded load, then LoRA tier, then prefix ring order (see the module docstring)."""

    name = "default"

    def __init__(self, load_factor: float = 1.25, vnodes: int = 64) -> None:
        if load_factor < 1:
            raise ValueError("load_factor must be at least 1")
        self.load_factor = load_factor
        self._rings = _Rings(vnodes)

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        if len(candidates) == 1:
            return 0, "prefix-hit"
        bound = load_bound(candidates, self.load_factor)
        eligible = [load_of(c) + 1 <= bound for c in candidates]
        if request.adapter is not None:
            scores = [lora_score(c, request.adapter) for c in candidates]
            best = max(s for s, ok in zip(scores, eligible, strict=True) if ok)
            eligible = [ok and s == best for s, ok in zip(scores, eligible, strict=True)]
        for rank, index in enumerate(self._rings.get(candidates).walk(request.key_hash())):
            if eligible[index]:
                return index, "prefix-hit" if rank == 0 else "prefix-spill"
        raise AssertionError("the load bound always leaves one replica eligible")


def make_policy(name: str, load_factor: float = 1.25) -> Policy:
    """A fresh policy (each Model gets its own: round-robin turns are per model)."""
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
    if name == "precise-prefix":  # KV-cache events; to become a scheduling profile
        from data_plane.gateway.kv_events.policy import precise_prefix_policy

        return precise_prefix_policy(load_factor)
    raise ValueError(f"unknown routing policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")
