"""What routing reads: the replica and request types, load, and the LoRA tiers (pure).

Load is what a replica has to do before it can start a new request: the gateway's own
requests in flight there plus the engine's waiting queue (from its metrics).

The policies themselves (`round-robin`, `least-load`, `prefix-affinity`, `lora-affinity`,
`default`, `precise-prefix`) are scheduling profiles: filters, weighted scorers and a
picker, declared in `data_plane/gateway/scheduling/profiles.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from data_plane.gateway.routing.ring import stable_hash

POLICY_NAMES = (
    "default",
    "round-robin",
    "least-load",
    "prefix-affinity",
    "lora-affinity",
    "precise-prefix",
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
    """What one request offers to the scheduling plugins (one attempt's view of it)."""

    adapter: str | None
    prefix: str
    now: float = 0.0
    """The event loop's clock when this attempt is scheduled (plugins read no clocks)."""
    tried: tuple[object, ...] = ()
    """Replicas this request already failed on (a retry goes elsewhere)."""
    over_cap: int = 0
    """How far over the per-replica cap this request may go (a tenant under its share,
    tenancy/shares.py); 0: not at all."""
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


def load_bound(candidates: Sequence[ReplicaLoad], load_factor: float) -> int:
    """The most load a replica may have after taking one more request (CHWBL's bound)."""
    total = sum(load_of(c) for c in candidates) + 1
    return max(1, math.ceil(total / len(candidates) * load_factor))
