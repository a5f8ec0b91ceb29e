"""The autoscaler in the embedded default: the same decisions, applied to local processes.

The supervisor (`control_plane/local/scaling.py`) implements `LocalFleet`: it lists each
Model with the replica count it runs now and its replicas (as in the admin API's
`GET /v1/state`), and starts or stops engine processes when `scale` asks.
`LocalAutoscaler.run` ticks until stopped. Replica phases map as: `Ready` -> ready;
`Starting`, `Restarting` -> loading (never scaled away); `Failed`, `Stopped` -> not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from control_plane.api.model import ModelSpec
from control_plane.autoscaler.algorithm import Recommendation
from control_plane.autoscaler.decider import Decider, Replica

log = logging.getLogger(__name__)

LOADING_PHASES = frozenset({"Starting", "Restarting"})


@dataclass(frozen=True)
class LocalReplica:
    name: str
    engine_url: str
    """The engine's base URL, e.g. `http://127.0.0.1:8100`."""
    phase: str


@dataclass(frozen=True)
class LocalModel:
    namespace: str
    name: str
    spec: ModelSpec
    current: int
    """The replica count the supervisor runs now (what was last asked for)."""
    replicas: Sequence[LocalReplica] = field(default_factory=tuple)


class LocalFleet(Protocol):
    async def models(self) -> Sequence[LocalModel]: ...

    async def scale(self, namespace: str, name: str, replicas: int, *, reason: str) -> None:
        """Run `replicas` engines for the model; a loading one is never the one stopped."""
        ...


def to_replica(r: LocalReplica) -> Replica | None:
    if r.phase == "Ready":
        return Replica(r.name, r.name, f"{r.engine_url.rstrip('/')}/metrics", True, False)
    if r.phase in LOADING_PHASES:
        return Replica(r.name, r.name, None, False, True)
    return None


class LocalAutoscaler:
    def __init__(self, fleet: LocalFleet, decider: Decider) -> None:
        self._fleet = fleet
        self._decider = decider
        self._known: set[tuple[str, str]] = set()

    async def tick(self) -> dict[str, Recommendation]:
        """One decision per model with autoscaling enabled, applied; keyed by model name."""
        out: dict[str, Recommendation] = {}
        seen: set[tuple[str, str]] = set()
        for m in await self._fleet.models():
            if not m.spec.autoscaling.enabled:
                continue
            seen.add((m.namespace, m.name))
            replicas = [r for r in map(to_replica, m.replicas) if r is not None]
            rec = await self._decider.decide(
                m.namespace, m.name, m.spec, current=m.current, replicas=replicas
            )
            if rec.desired_replicas != m.current:
                log.info("scaling %s to %d: %s", m.name, rec.desired_replicas, rec.message)
                await self._fleet.scale(
                    m.namespace, m.name, rec.desired_replicas, reason=rec.reason.value
                )
            out[m.name] = rec
        for gone in self._known - seen:
            self._decider.forget(*gone)
        self._known = seen
        return out

    async def run(self, stop: asyncio.Event, *, interval_seconds: float = 2.0) -> None:
        """Tick every `interval_seconds` until `stop` is set; a failed tick is logged."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # a bad tick must not end autoscaling
                log.exception("autoscaler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
