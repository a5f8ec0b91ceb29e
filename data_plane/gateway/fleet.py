"""What the gateway knows about the fleet, and which replicas may take a request (pure).

Discovery produces a `FleetSnapshot` (what runs where, what is loaded); the `Fleet` keeps
the live side of each replica across snapshots (requests in flight, the engine's queue,
passive health) and answers: which model does this id mean, and which replicas may serve it
(the scheduling pipeline's admission filters, run in stages that say why none is left).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from data_plane.gateway.errors import ModelNotFoundError, NoReadyReplicaError
from data_plane.gateway.fleet_snapshot import AdapterInfo, FleetSnapshot, ModelInfo, ReplicaInfo
from data_plane.gateway.health import HealthPolicy, PassiveHealth
from data_plane.gateway.liveness import EngineCounters, EngineTiming
from data_plane.gateway.outliers import LatencyAverage
from data_plane.gateway.routing.policy import Policy, RouteRequest
from data_plane.gateway.scheduling.context import SchedulingContext
from data_plane.gateway.scheduling.filters import (
    AdapterLoaded,
    Healthy,
    NotTried,
    Ready,
    StateFilter,
    UnderCap,
    keep_all,
)
from data_plane.gateway.scheduling.profiles import make_profile

__all__ = [  # the snapshot types are re-exported: discovery builds them from here
    "AdapterInfo",
    "Fleet",
    "FleetSettings",
    "FleetSnapshot",
    "InFlightAttempt",
    "ModelInfo",
    "ModelRoute",
    "Replica",
    "ReplicaInfo",
]


class InFlightAttempt(Protocol):
    """One request being served by a replica, as the watchdog sees it (proxy.py)."""

    deadline: float
    """When it gives up waiting for its first byte (infinite once that came)."""

    def silent_since(self) -> float | None:
        """When its stream last got bytes; None while it waits for its first byte."""

    def abort(self, message: str) -> None:
        """Give up on this replica: retried elsewhere before the first byte, else the
        stream ends with an error event."""


class Replica:
    """One engine and its live state. Implements the routing `ReplicaLoad` protocol."""

    __slots__ = (
        "adapters",
        "attempts",
        "cap_left",
        "counters",
        "health",
        "in_flight",
        "last_ok",
        "latency",
        "max_loras",
        "model",
        "name",
        "ready",
        "retired",
        "running",
        "running_adapters",
        "timing",
        "url",
        "waiting",
    )

    def __init__(self, model: str, info: ReplicaInfo, max_loras: int, health: HealthPolicy) -> None:
        self.model = model
        self.name = info.name
        self.url = info.url
        self.ready = info.ready
        self.adapters = info.adapters
        self.max_loras = max_loras
        self.in_flight = 0
        self.cap_left: int | None = None
        """This process's cap here from the shared view: the per-replica cap less the
        other gateway processes' requests in flight (tenancy/shared_shares.py); None: no
        fresh view, `FleetSettings.per_replica_cap` holds."""
        self.waiting = 0
        self.running_adapters: frozenset[str] | None = None
        self.health = PassiveHealth(health)
        self.retired = False
        """Gone from discovery (requests still in flight there finish normally)."""
        self.running = 0
        self.counters: EngineCounters | None = None
        """The engine's latency counters at the last scrape."""
        self.timing = EngineTiming()
        """The engine's recent latencies (from the last two scrapes)."""
        self.latency = LatencyAverage()
        """Time to first byte of the streams it served, as the gateway saw it."""
        self.last_ok = float("-inf")
        """When it last answered a request well (a recent answer needs no probe)."""
        self.attempts: set[InFlightAttempt] = set()

    def available(self, now: float) -> bool:
        """Not ejected by passive health at `now` (the scheduling `ReplicaState`)."""
        return self.health.available(now)


@dataclass(slots=True)
class ModelRoute:
    name: str
    policy: Policy
    policy_name: str
    tenant: str | None = None
    replicas: list[Replica] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FleetSettings:
    per_replica_cap: int = 0
    """Requests in flight per replica; 0: no cap."""
    load_factor: float = 1.25
    health: HealthPolicy = field(default_factory=HealthPolicy)
    retry_after_s: float = 2.0
    """What Retry-After says when no replica is ready."""


class Fleet:
    def __init__(self, settings: FleetSettings, context: SchedulingContext | None = None) -> None:
        self.settings = settings
        self.context = context or SchedulingContext()
        """What the Models' profiles share (the KV index), passed to `make_profile`."""
        self.models: dict[str, ModelRoute] = {}
        self.adapters: dict[str, AdapterInfo] = {}
        """Every adapter id the gateway can serve or will soon, with its base model."""
        self.discovered = False
        self._routable: tuple[StateFilter, ...] = (Ready(), Healthy(), NotTried())
        self._loaded: tuple[StateFilter, ...] = (AdapterLoaded(),)
        self._capacity: tuple[StateFilter, ...] = (UnderCap(settings.per_replica_cap),)

    def apply(self, snapshot: FleetSnapshot) -> None:
        """Adopt `snapshot`, keeping the live state of replicas that are still there."""
        old = {(r.model, r.name, r.url): r for m in self.models.values() for r in m.replicas}
        models: dict[str, ModelRoute] = {}
        adapters: dict[str, AdapterInfo] = {}
        for info in snapshot.models:
            route = self.models.get(info.name)
            if route is None or route.policy_name != info.policy:
                route = ModelRoute(
                    name=info.name,
                    policy=make_profile(info.policy, self.settings.load_factor, self.context),
                    policy_name=info.policy,
                )
            route.tenant = info.tenant
            replicas = []
            for r in info.replicas:
                replica = old.get((info.name, r.name, r.url))
                if replica is None:
                    replica = Replica(info.name, r, info.max_loras, self.settings.health)
                else:
                    replica.ready = r.ready
                    replica.adapters = r.adapters
                    replica.max_loras = info.max_loras
                replicas.append(replica)
                for adapter in r.adapters:
                    adapters.setdefault(adapter, AdapterInfo(adapter, info.name))
            route.replicas = replicas
            models[info.name] = route
        for a in snapshot.adapters:
            adapters[a.name] = a
        for name in models:
            adapters.pop(name, None)  # a model id wins over an adapter of the same name
        kept = {id(r) for m in models.values() for r in m.replicas}
        for replica in old.values():
            if id(replica) not in kept:
                replica.retired = True
        self.models = models
        self.adapters = adapters
        self.discovered = True

    def replicas(self) -> Iterable[Replica]:
        for route in self.models.values():
            yield from route.replicas

    def resolve(self, model: str) -> tuple[ModelRoute, str | None]:
        """The route for a model id and the adapter it names (None for a base model)."""
        if not self.discovered:
            raise NoReadyReplicaError(
                "The gateway has not discovered its replicas yet; retry shortly.",
                code="discovery_pending",
                retry_after_s=self.settings.retry_after_s,
            )
        route = self.models.get(model)
        if route is not None:
            return route, None
        adapter = self.adapters.get(model)
        if adapter is not None:
            base = self.models.get(adapter.base_model)
            if base is not None:
                return base, model
        raise ModelNotFoundError(model)

    def candidates(
        self,
        route: ModelRoute,
        adapter: str | None,
        now: float,
        exclude: tuple[Replica, ...] = (),
        over_cap: int = 0,
    ) -> list[Replica]:
        """`candidates_for` a request for `adapter` at `now`, not to `exclude`."""
        return self.candidates_for(route, RouteRequest(adapter, "", now, exclude, over_cap))

    def candidates_for(self, route: ModelRoute, request: RouteRequest) -> list[Replica]:
        """Routable replicas under their cap; empty when all are busy (the caller waits).

        With `request.over_cap` > 0 (a tenant under its share, see tenancy/shares.py), when
        every replica is at its cap, those less than `over_cap` over it whose engine queues
        nothing (`waiting`, from the load poll) are offered instead (filters.UnderCap).

        Raises NoReadyReplicaError when nothing could serve the request however long it waits.
        """
        usable = keep_all(self._routable, route.replicas, request)
        if not usable:
            raise NoReadyReplicaError(
                f"No ready replica of model `{route.name}`; retry shortly.",
                retry_after_s=self.settings.retry_after_s,
            )
        adapter = request.adapter
        if adapter is not None:
            usable = keep_all(self._loaded, usable, request)
            if not usable:
                declared = self.adapters.get(adapter)
                if declared is not None and declared.phase == "Failed":
                    raise NoReadyReplicaError(
                        f"Adapter `{adapter}` failed to load; see its status in /v1/adapters.",
                        code="adapter_failed",
                        retry_after_s=self.settings.retry_after_s,
                    )
                raise NoReadyReplicaError(
                    f"Adapter `{adapter}` is not loaded on a ready replica yet; retry shortly.",
                    code="adapter_not_loaded",
                    retry_after_s=self.settings.retry_after_s,
                )
        if self.settings.per_replica_cap <= 0:
            return usable
        return keep_all(self._capacity, usable, request)

    def routable(self, now: float) -> bool:
        return any(
            r.ready and r.health.available(now) for m in self.models.values() for r in m.replicas
        )
