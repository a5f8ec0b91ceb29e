"""The operator's periodic work: one loop per job over kopf's indexes, no kopf timers.

Why not `@kopf.timer`: kopf puts its finalizer on every resource a timer or daemon
matches (it must stop the timer before the resource goes), so with timers on Tenants and
Models deleting either waits for a running operator, and hangs for good with none.
Instead kopf *indexes* hold the Tenants, Models and LoraAdapters (an index needs no
finalizer), and `PeriodicWalk` runs each job (`Job`: tenant re-validation, Model
re-apply, adapter drift repair, the sweep of undeclared adapters, autoscaling ticks) every
its interval over what the indexes hold. Only LoraAdapters keep a finalizer: their delete
handler must unload them from the pods, which live on.

Peering: kopf pauses the handlers of a replica another one outranks, and stops its timers
too, but it tells no handler. `PeeringGate` reads the same peering objects and applies the
same rule (`peering.yields_to_peers`) before each pass: a paused replica's walk does
nothing. The verdict is shared by the jobs for `gate_ttl_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from control_plane.kube import KINDS, KubeClient, KubeError, Ref, cluster_ref
from control_plane.operator.peering import yields_to_peers
from control_plane.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    """Bounded metric label: `tenants`, `models`, `adapters`, `sweep`, `autoscale`."""
    interval_seconds: float
    run: Callable[[], Awaitable[None]]
    """One pass; it catches what concerns one resource, so one bad resource stops none."""


class PeeringGate:
    """Is this replica the one that works? kopf's answer, re-derived from the peering
    objects (an API error counts as "no": better a skipped pass than two writers)."""

    def __init__(
        self,
        kube: KubeClient,
        settings: OperatorSettings,
        identity: str,
        *,
        ttl_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._identity = identity
        self._ttl = ttl_seconds
        self._clock = clock
        self._now = now
        self._cached: tuple[float, bool] | None = None
        self._lock = asyncio.Lock()

    def _refs(self) -> list[Ref]:
        name = self._settings.peering_name
        if not self._settings.namespaces:
            return [cluster_ref("clusterkopfpeerings", name)]
        return [Ref(KINDS["kopfpeerings"], ns, name) for ns in self._settings.namespaces]

    async def _peering_installed(self) -> bool:
        """Whether the peering CRDs exist: listing their collection answers 404 if not."""
        try:
            await self._kube.list(dataclasses.replace(self._refs()[0], name=None))
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def _decide(self) -> bool:
        if self._settings.standalone:
            return True
        found = [await self._kube.get(ref) for ref in self._refs()]
        if all(doc is None for doc in found) and self._settings.peering_mandatory:
            # kopf pauses while the peering CRDs are missing (not while the object is)
            return await self._peering_installed()
        now = self._now()
        return not any(
            yields_to_peers(
                (doc or {}).get("status"),
                identity=self._identity,
                priority=self._settings.peering_priority,
                now=now,
            )
            for doc in found
        )

    async def active(self) -> bool:
        async with self._lock:
            if self._cached is not None and self._clock() - self._cached[0] < self._ttl:
                return self._cached[1]
            try:
                verdict = await self._decide()
            except KubeError as exc:
                log.warning("cannot read the peering, skipping this pass: %s", exc)
                verdict = False
            self._cached = (self._clock(), verdict)
            return verdict


class WalkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.passes = Counter(
            "hoist_operator_walk_passes_total",
            "Periodic passes by job and outcome (ran, paused: another replica works, error).",
            ["job", "outcome"],
            registry=registry,
        )


class PeriodicWalk:
    """Runs each job every its interval (measured from one pass's start to the next's),
    while the gate says this replica works. `start(jobs)` once, `stop()` when done."""

    def __init__(self, gate: PeeringGate, metrics: WalkMetrics) -> None:
        self._gate = gate
        self._metrics = metrics
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, jobs: Sequence[Job]) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"hoist walk: {job.name}") for job in jobs
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + job.interval_seconds
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = loop.time() + job.interval_seconds
            if not await self._gate.active():
                self._metrics.passes.labels(job.name, "paused").inc()
                continue
            try:
                await job.run()
            except Exception:
                self._metrics.passes.labels(job.name, "error").inc()
                log.exception("periodic %s pass failed", job.name)
            else:
                self._metrics.passes.labels(job.name, "ran").inc()
