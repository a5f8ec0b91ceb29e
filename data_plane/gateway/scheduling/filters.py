"""Filters: which candidates may take the request (pure).

Admission filters run on a model's replicas before any profile (`Fleet.candidates_for`
runs them in stages and says why nothing is left): ready, healthy (not ejected), not
already tried, adapter loaded, under the per-replica cap (with the tenant's overcommit
allowance). They read more than the routing `ReplicaLoad`: `ReplicaState` below.

`BoundedLoad` is a profile filter: no replica above `load_factor` x the mean load after
taking the request (CHWBL's bound, KubeAI's and the default profile's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from data_plane.gateway.routing.policy import ReplicaLoad, RouteRequest, load_bound, load_of


class ReplicaState(ReplicaLoad, Protocol):
    """What admission filters read about a replica (fleet.Replica implements it)."""

    @property
    def ready(self) -> bool: ...
    @property
    def adapters(self) -> frozenset[str]:
        """Adapters loaded on the engine (active or not)."""
        ...

    def available(self, now: float) -> bool:
        """Not ejected by passive health at `now`."""
        ...

    @property
    def cap_left(self) -> int | None:
        """This process's cap here when the gateway processes share their counts
        (tenancy/shared_shares.py); None: the static per-replica cap holds."""
        ...


class StateFilter(Protocol):
    """A filter over `ReplicaState` (the admission stage)."""

    name: str

    def keep(self, candidates: Sequence[ReplicaState], request: RouteRequest) -> Sequence[bool]:
        """One flag per candidate, same order: True keeps it."""
        ...


class Ready:
    name = "ready"

    def keep(self, candidates: Sequence[ReplicaState], request: RouteRequest) -> list[bool]:
        return [c.ready for c in candidates]


class Healthy:
    """Not ejected: passive health (failures in a row, then a cool-down) lets it serve."""

    name = "healthy"

    def keep(self, candidates: Sequence[ReplicaState], request: RouteRequest) -> list[bool]:
        now = request.now
        return [c.available(now) for c in candidates]


class NotTried:
    """A retry goes to a replica this request has not failed on."""

    name = "not-tried"

    def keep(self, candidates: Sequence[ReplicaState], request: RouteRequest) -> list[bool]:
        if not request.tried:
            return [True] * len(candidates)
        tried = {id(t) for t in request.tried}
        return [id(c) not in tried for c in candidates]


class AdapterLoaded:
    """The request's adapter is loaded on the engine (any replica for a base model)."""

    name = "adapter-loaded"

    def keep(self, candidates: Sequence[ReplicaState], request: RouteRequest) -> list[bool]:
        adapter = request.adapter
        if adapter is None:
            return [True] * len(candidates)
        return [adapter in c.adapters for c in candidates]


class UnderCap:
    """Replicas under `cap` requests in flight (0: no cap). When all are at it, a request
    allowed `over_cap` (a tenant under its share) may go less than that far over it, to a
    replica whose engine queues nothing (`waiting`, from the load poll)."""

    name = "under-cap"

    def __init__(self, cap: int) -> None:
        self.cap = cap

    def keep(self, candidates: Sequence[ReplicaState], request: RouteRequest) -> list[bool]:
        cap = self.cap
        if cap <= 0:
            return [True] * len(candidates)
        caps = [cap if c.cap_left is None else c.cap_left for c in candidates]
        under = [c.in_flight < mine for c, mine in zip(candidates, caps, strict=True)]
        if request.over_cap <= 0 or any(under):
            return under
        over = request.over_cap
        return [
            c.in_flight < mine + over and c.waiting == 0
            for c, mine in zip(candidates, caps, strict=True)
        ]


class BoundedLoad:
    """Keep replicas whose load after this request stays within the bound."""

    name = "bounded-load"

    def __init__(self, load_factor: float) -> None:
        if load_factor < 1:
            raise ValueError("load_factor must be at least 1")
        self.load_factor = load_factor

    def keep(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[bool]:
        bound = load_bound(candidates, self.load_factor)
        return [load_of(c) + 1 <= bound for c in candidates]


R = TypeVar("R", bound=ReplicaState)


def keep_all(
    filters: Sequence[StateFilter], candidates: Sequence[R], request: RouteRequest
) -> list[R]:
    """The candidates every filter keeps, filters applied in order to what is left."""
    kept: list[R] | None = None  # None: all so far (most often: no new list)
    for f in filters:
        left = candidates if kept is None else kept
        flags = f.keep(left, request)
        if not all(flags):
            kept = [c for c, ok in zip(left, flags, strict=True) if ok]
            if not kept:
                break
    return list(candidates) if kept is None else kept
