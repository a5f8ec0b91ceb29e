"""The supervisor's process table: every process the plan names, which replica slots run,
and each replica as the state, the adapter reconciler and the autoscaler see it.

The table is the kubelet's view: it builds the `ManagedProcess`es, stops them in order,
and reads their phases; deciding what runs is the plan's (`plan.py`) and the autoscaler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence

import aiohttp

from control_plane.api import Model
from control_plane.api.embedded import GatewayState, ReplicaPhase, ReplicaState
from control_plane.api.liveness import LivenessPolicy, RestartReason
from control_plane.local.adapters import LocalPod
from control_plane.local.plan import Plan, ReplicaPlan, Role
from control_plane.local.process import ManagedProcess, Phase
from control_plane.local.settings import SupervisorSettings
from control_plane.local.watchdog import LivenessWatch


class ProcessTable:
    def __init__(self, plan: Plan, models: Sequence[Model]) -> None:
        self.plan = plan
        self.processes: dict[str, ManagedProcess] = {}
        # Which replica slots of each model run (the autoscaler changes them).
        self.active: dict[str, set[int]] = {
            m.metadata.name: set(range(m.spec.replicas)) for m in models
        }
        self.retiring: set[str] = set()  # replicas draining: their slot is not free yet
        self.loaded: dict[str, list[str]] = {}
        """The adapters each replica holds loaded, by replica name (the reconciler's word)."""

    def create(
        self,
        session: aiohttp.ClientSession,
        settings: SupervisorSettings,
        env: dict[str, str],
        *,
        on_change: Callable[[ManagedProcess], None],
        on_restart: Callable[[ManagedProcess, RestartReason], None],
    ) -> None:
        """A `ManagedProcess` for every process of the plan (none started); engines get
        the liveness watch."""
        watch = liveness_watch(settings)
        for spec in self.plan.processes:
            self.processes[spec.name] = ManagedProcess(
                spec,
                session=session,
                log_dir=settings.logs_dir,
                env=env,
                stop_grace_s=settings.stop_grace_s,
                max_restarts=settings.max_restarts,
                on_change=on_change,
                liveness=watch if spec.role is Role.ENGINE else None,
                on_restart=on_restart,
            )

    def running_replicas(self, model: str | None = None) -> list[ReplicaPlan]:
        """The replica slots that run now, of one model or of all."""
        return [
            r
            for r in self.plan.replicas
            if (model is None or r.model == model) and r.index in self.active[r.model]
        ]

    def replica_state(self, replica: ReplicaPlan) -> ReplicaState:
        engine = self.processes.get(replica.engine.name)
        sidecar = self.processes.get(replica.sidecar.name)
        phases = [p.phase if p else Phase.PENDING for p in (engine, sidecar)]
        phase = combined_phase(phases)
        messages = [p.last_error for p in (engine, sidecar) if p and p.last_error]
        reasons = [p.last_restart_reason for p in (engine, sidecar) if p and p.last_restart_reason]
        return ReplicaState(
            name=replica.name,
            engine_url=replica.engine.url,
            engine_metrics_url=(
                f"http://127.0.0.1:{replica.engine.metrics_port}"
                if replica.engine.metrics_port is not None
                else None
            ),
            sidecar_url=replica.sidecar.url,
            phase=ReplicaPhase(phase),
            ready=phase is Phase.READY,
            adapters=self.loaded.get(replica.name, []),
            restarts=sum(p.restarts for p in (engine, sidecar) if p),
            last_restart_reason=reasons[0].value if reasons else None,
            engine_pid=engine.pid if engine else None,
            sidecar_pid=sidecar.pid if sidecar else None,
            message=messages[0].splitlines()[0] if messages else "",
        )

    def replica_views(self) -> list[LocalPod]:
        """The running replicas as the adapter reconciler sees them."""
        return [
            LocalPod(r.name, r.model, r.sidecar.url, self.replica_state(r).ready)
            for r in self.running_replicas()
        ]

    def gateway_state(self, url: str) -> GatewayState:
        gateway = self.processes.get(self.plan.gateway.name)
        return GatewayState(
            url=url,
            phase=ReplicaPhase(gateway.phase if gateway else Phase.PENDING),
            pid=gateway.pid if gateway else None,
        )

    async def stop_all(self) -> int:
        """The gateway first (no new requests), then the sidecars, then the engines; how
        many processes had been started."""
        replicas = self.plan.replicas  # every slot: stopping one never started is a no-op
        stages = [[self.plan.gateway], [r.sidecar for r in replicas], [r.engine for r in replicas]]
        for stage in stages:
            await asyncio.gather(
                *(self.processes[s.name].stop() for s in stage if s.name in self.processes)
            )
        return sum(1 for p in self.processes.values() if p.pid is not None)

    def kill_all(self) -> None:
        """SIGKILL every process group that was started (a second Ctrl-C)."""
        for process in self.processes.values():
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)


def liveness_watch(settings: SupervisorSettings) -> LivenessWatch:
    policy = LivenessPolicy(
        unresponsive_after_s=settings.engine_unresponsive_after_s,
        min_failures=settings.liveness_min_failures,
        start_timeout_s=settings.engine_ready_timeout_s,
    )
    return LivenessWatch(policy, settings.liveness_interval_s, settings.liveness_probe_timeout_s)


_SEVERITY = [
    Phase.FAILED,
    Phase.RESTARTING,
    Phase.STARTING,
    Phase.PENDING,
    Phase.STOPPED,
    Phase.READY,
]


def combined_phase(phases: list[Phase]) -> Phase:
    """The phase of a replica: the worst of its engine's and its sidecar's."""
    return min(phases, key=_SEVERITY.index)
