"""The autoscaler's target in the embedded default: the `LocalFleet` it drives, over the
process table's replica slots, and the autoscaler's loop beside the supervisor's.

Scaling up starts free slots; scaling down takes ready replicas out of the state (the
gateway stops routing to them), waits `drain_s`, then stops them. A replica still loading
is never the one stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from prometheus_client import CollectorRegistry

from control_plane.api import Model
from control_plane.api.embedded import ReplicaPhase
from control_plane.autoscaler.decider import Decider
from control_plane.autoscaler.local import LocalAutoscaler, LocalModel, LocalReplica
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineScraper, GatewayDemandReader
from control_plane.local.background import Background
from control_plane.local.plan import ReplicaPlan
from control_plane.local.process import StartError
from control_plane.local.process_table import ProcessTable
from control_plane.local.report import Report

_LOADING = {ReplicaPhase.STARTING, ReplicaPhase.RESTARTING, ReplicaPhase.PENDING}


class LocalScaleTarget:
    """`control_plane.autoscaler.local.LocalFleet` over the supervisor's process table."""

    def __init__(
        self,
        models: Sequence[Model],
        table: ProcessTable,
        background: Background,
        report: Report,
        *,
        drain_s: float,
    ) -> None:
        self._models = models
        self._table = table
        self._background = background
        self._report = report
        self._drain_s = drain_s

    async def models(self) -> list[LocalModel]:
        table = self._table
        return [
            LocalModel(
                namespace=m.metadata.namespace,
                name=m.metadata.name,
                spec=m.spec,
                current=len(table.active[m.metadata.name]),
                replicas=tuple(
                    LocalReplica(r.name, r.engine.url, table.replica_state(r).phase)
                    for r in table.running_replicas(m.metadata.name)
                ),
            )
            for m in self._models
        ]

    async def scale(self, namespace: str, name: str, replicas: int, *, reason: str) -> None:
        """Run `replicas` replicas of the model: start free slots, or retire ready replicas
        (the highest first; one still loading is never the one stopped)."""
        del namespace  # the embedded default has one namespace per model name
        table = self._table
        slots = [r for r in table.plan.replicas if r.model == name]
        active = table.active[name]
        wanted = max(0, min(replicas, len(slots)))
        if wanted > len(active):
            free = [s for s in slots if s.index not in active and s.name not in table.retiring]
            for slot in free[: wanted - len(active)]:
                active.add(slot.index)
                self._background.spawn(self._start_replica(slot))
        elif wanted < len(active):
            retirable = [
                s for s in reversed(slots)
                if s.index in active and table.replica_state(s).phase not in _LOADING
            ]  # fmt: skip
            for slot in retirable[: len(active) - wanted]:
                active.discard(slot.index)
                table.retiring.add(slot.name)
                self._background.spawn(self._retire_replica(slot))
        self._report.scaled(name, len(active), reason)

    async def _start_replica(self, replica: ReplicaPlan) -> None:
        try:
            for spec in (replica.engine, replica.sidecar):
                took = await self._table.processes[spec.name].start()
                self._report.ready(spec, took)
        except StartError as exc:
            self._report.scale_up_failed(exc)

    async def _retire_replica(self, replica: ReplicaPlan) -> None:
        # Out of the state first, so the gateway stops routing to it, then stopped.
        processes = self._table.processes
        try:
            await asyncio.sleep(self._drain_s)
            await processes[replica.sidecar.name].stop()
            await processes[replica.engine.name].stop()
        finally:
            self._table.retiring.discard(replica.name)
        self._report.retired(replica)


async def run_autoscaler(
    fleet: LocalScaleTarget,
    session: aiohttp.ClientSession,
    registry: CollectorRegistry,
    *,
    gateway_metrics: str,
    headers: dict[str, str],
    interval_s: float,
) -> None:
    """The autoscaler's loop over `fleet`, reading the engines and the gateway's demand
    (its `/metrics` at `gateway_metrics`, with `headers`); runs until cancelled."""

    async def gateways() -> list[str]:
        return [gateway_metrics]

    decider = Decider(
        EngineScraper(session, timeout_s=2.0),
        GatewayDemandReader(session, gateways, timeout_s=2.0, headers=headers),
        AutoscalerMetrics(registry),
    )
    never = asyncio.Event()  # the task is cancelled at shutdown
    await LocalAutoscaler(fleet, decider).run(never, interval_seconds=interval_s)
