"""`hoist up`: run the declared models on this machine as local processes.

The supervisor is the embedded default's kubelet, API server and operator in one: it starts
an engine and a sidecar per `Model` replica and one gateway, restarts what crashes, keeps
the adapter store, drives the adapter reconciler, and on SIGINT/SIGTERM stops every child
process group before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Coroutine
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from rich.console import Console

from control_plane.api import LoraAdapter
from control_plane.api.embedded import (
    EmbeddedState,
    GatewayState,
    ModelState,
    ReplicaPhase,
    ReplicaState,
)
from control_plane.api.liveness import LivenessPolicy, RestartReason
from control_plane.autoscaler.decider import Decider
from control_plane.autoscaler.local import LocalAutoscaler, LocalModel, LocalReplica
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineScraper, GatewayDemandReader
from control_plane.documents import Declarations
from control_plane.local import admin_token
from control_plane.local.adapters import LocalAdapterReconciler, LocalPod
from control_plane.local.admin_api import build_app
from control_plane.local.metrics import SupervisorMetrics
from control_plane.local.plan import ProcessSpec, ReplicaPlan, Role
from control_plane.local.preflight import check_ports, plan_for, read_run_file
from control_plane.local.process import ManagedProcess, Phase, StartError
from control_plane.local.progress import StartProgress
from control_plane.local.settings import SupervisorSettings
from control_plane.local.store import AdapterStore, restore_notes
from control_plane.local.watchdog import LivenessWatch
from control_plane.operator.metrics import OperatorMetrics

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_BAD_SETUP = 2


class Supervisor:
    def __init__(
        self,
        declarations: Declarations,
        settings: SupervisorSettings,
        *,
        console: Console | None = None,
        store_dir: Path | None = None,
    ) -> None:
        """`store_dir`: where adapters added through the gateway persist (None: memory
        only); `settings.store_dir_for(the -f paths)` keeps one store per declaration."""
        self.declarations = declarations
        self.settings = settings
        self.plan = plan_for(declarations, settings)
        # soft_wrap: a long line (a path) stays one line in a log, as a terminal wraps it
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._reconciler: LocalAdapterReconciler | None = None  # needs the HTTP session
        self.registry = CollectorRegistry()
        self._metrics = OperatorMetrics(self.registry)
        self._supervisor_metrics = SupervisorMetrics(self.registry)
        self._store = AdapterStore(
            store_dir, lambda: {m.metadata.name for m in declarations.models}
        )
        self._processes: dict[str, ManagedProcess] = {}
        # Which replica slots of each model run (the autoscaler changes them).
        self._active: dict[str, set[int]] = {
            m.metadata.name: set(range(m.spec.replicas)) for m in declarations.models
        }
        self._retiring: set[str] = set()  # replicas draining: their slot is not free yet
        self._background: set[asyncio.Task[None]] = set()
        self._loaded: dict[str, list[str]] = {}
        self._wake = asyncio.Event()
        self._main: asyncio.Task[object] | None = None
        self._signals = 0
        self._admin_token = ""
        self._began = time.monotonic()

    # -- the AdminBackend the admin API serves -------------------------------------------

    @property
    def store(self) -> AdapterStore:
        return self._store

    def adapters_changed(self) -> None:
        self._wake.set()

    async def remove_adapter(self, adapter: LoraAdapter) -> None:
        if self._reconciler is not None:
            await self._reconciler.remove(adapter, self._replica_views())

    def state(self) -> EmbeddedState:
        models = []
        for model in self.declarations.models:
            name = model.metadata.name
            replicas = [self._replica_state(r) for r in self._running_replicas(name)]
            models.append(
                ModelState(
                    name=name,
                    namespace=model.metadata.namespace,
                    engine=model.spec.engine,
                    routing_policy=model.spec.routing_policy,
                    tenant=model.spec.tenant,
                    desired_replicas=len(self._active[name]),
                    max_loras=model.spec.lora.max_loras,
                    replicas=replicas,
                )
            )
        gateway = self._processes.get(self.plan.gateway.name)
        return EmbeddedState(
            models=models,
            adapters=list(self._store),
            tenants=list(self.declarations.tenants),
            gateway=GatewayState(
                url=f"http://{self.settings.host}:{self.settings.gateway_port}",
                phase=ReplicaPhase(gateway.phase if gateway else Phase.PENDING),
                pid=gateway.pid if gateway else None,
            ),
        )

    def _replica_state(self, replica: ReplicaPlan) -> ReplicaState:
        engine = self._processes.get(replica.engine.name)
        sidecar = self._processes.get(replica.sidecar.name)
        phases = [p.phase if p else Phase.PENDING for p in (engine, sidecar)]
        phase = _combined_phase(phases)
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
            adapters=self._loaded.get(replica.name, []),
            restarts=sum(p.restarts for p in (engine, sidecar) if p),
            last_restart_reason=reasons[0].value if reasons else None,
            engine_pid=engine.pid if engine else None,
            sidecar_pid=sidecar.pid if sidecar else None,
            message=messages[0].splitlines()[0] if messages else "",
        )

    def _running_replicas(self, model: str | None = None) -> list[ReplicaPlan]:
        """The replica slots that run now, of one model or of all."""
        return [
            r
            for r in self.plan.replicas
            if (model is None or r.model == model) and r.index in self._active[r.model]
        ]

    def _replica_views(self) -> list[LocalPod]:
        return [
            LocalPod(r.name, r.model, r.sidecar.url, self._replica_state(r).ready)
            for r in self._running_replicas()
        ]

    # -- the LocalFleet the autoscaler drives --------------------------------------------

    async def models(self) -> list[LocalModel]:
        return [
            LocalModel(
                namespace=m.metadata.namespace,
                name=m.metadata.name,
                spec=m.spec,
                current=len(self._active[m.metadata.name]),
                replicas=tuple(
                    LocalReplica(r.name, r.engine.url, self._replica_state(r).phase)
                    for r in self._running_replicas(m.metadata.name)
                ),
            )
            for m in self.declarations.models
        ]

    async def scale(self, namespace: str, name: str, replicas: int, *, reason: str) -> None:
        """Run `replicas` replicas of the model: start free slots, or retire ready replicas
        (the highest first; one still loading is never the one stopped)."""
        del namespace  # the embedded default has one namespace per model name
        slots = [r for r in self.plan.replicas if r.model == name]
        active = self._active[name]
        wanted = max(0, min(replicas, len(slots)))
        if wanted > len(active):
            free = [s for s in slots if s.index not in active and s.name not in self._retiring]
            for slot in free[: wanted - len(active)]:
                active.add(slot.index)
                self._in_background(self._start_replica(slot))
        elif wanted < len(active):
            loading = {ReplicaPhase.STARTING, ReplicaPhase.RESTARTING, ReplicaPhase.PENDING}
            retirable = [
                s for s in reversed(slots)
                if s.index in active and self._replica_state(s).phase not in loading
            ]  # fmt: skip
            for slot in retirable[: len(active) - wanted]:
                active.discard(slot.index)
                self._retiring.add(slot.name)
                self._in_background(self._retire_replica(slot))
        self.console.print(f"scaled {name} to {len(active)} ({reason})")

    def _in_background(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_replica(self, replica: ReplicaPlan) -> None:
        try:
            for spec in (replica.engine, replica.sidecar):
                took = await self._processes[spec.name].start()
                self.console.print(f"[green]ready[/] {spec.name} on {spec.url} ({took:.1f}s)")
        except StartError as exc:
            self.console.print(f"[red]scale-up failed:[/] {exc}")

    async def _retire_replica(self, replica: ReplicaPlan) -> None:
        # Out of the state first, so the gateway stops routing to it, then stopped.
        try:
            await asyncio.sleep(self.settings.drain_s)
            await self._processes[replica.sidecar.name].stop()
            await self._processes[replica.engine.name].stop()
        finally:
            self._retiring.discard(replica.name)
        self.console.print(f"stopped {replica.name} (scaled down)")

    # -- running -------------------------------------------------------------------------

    async def run(self) -> int:
        """Start everything, serve until SIGINT/SIGTERM, stop everything; the exit code."""
        self._main = asyncio.current_task()
        problems = check_ports(self.plan, self.settings)
        running = read_run_file(self.settings.run_file)
        if running is not None:
            problems.insert(
                0, f"another `hoist up` is running (pid {running['pid']}); stop it first"
            )
        if problems:
            for problem in problems:
                self.console.print(f"[red]error:[/] {problem}")
            self.console.print("Nothing was started.")
            return EXIT_BAD_SETUP
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            return await self._run_started()
        except asyncio.CancelledError:
            return EXIT_OK  # a requested stop; _run_started already stopped everything
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _run_started(self) -> int:
        self._admin_token = admin_token.issue(self.settings.admin_token_file)
        self._write_run_file()
        declared = {a.metadata.name for a in self.declarations.adapters}
        restored = sorted(a.metadata.name for a in self._store if a.metadata.name not in declared)
        for line in restore_notes(restored, self._store.root, self.settings.store_dir):
            self.console.print(line, markup=False, highlight=False)
        for adapter in self.declarations.adapters:
            self._store.declare(adapter)  # declared adapters join those added through the API
        runner = web.AppRunner(build_app(self, self._admin_token), access_log=None)
        await runner.setup()
        async with aiohttp.ClientSession() as session:
            self._reconciler = LocalAdapterReconciler(session, metrics=self._metrics)
            try:
                await web.TCPSite(runner, "127.0.0.1", self.settings.admin_port).start()
                await self._start_all(session)
                self._print_ready()
                await self._serve(session)
                return EXIT_OK
            except StartError as exc:
                self.console.print(f"[red]error:[/] {exc}")
                return EXIT_START_FAILED
            finally:
                for task in list(self._background):
                    task.cancel()
                await asyncio.gather(*self._background, return_exceptions=True)
                await asyncio.shield(self._stop_all())
                await runner.cleanup()
                self.settings.run_file.unlink(missing_ok=True)
                self.settings.admin_token_file.unlink(missing_ok=True)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals == 1:
            self.console.print(f"\n{sig.name}: stopping every process (again to force)...")
            if self._main is not None:
                self._main.cancel()
            return
        for process in self._processes.values():
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)

    def _liveness_watch(self) -> LivenessWatch:
        s = self.settings
        policy = LivenessPolicy(
            unresponsive_after_s=s.engine_unresponsive_after_s,
            min_failures=s.liveness_min_failures,
            start_timeout_s=s.engine_ready_timeout_s,
        )
        return LivenessWatch(policy, s.liveness_interval_s, s.liveness_probe_timeout_s)

    async def _start_all(self, session: aiohttp.ClientSession) -> None:
        env = self._child_env()
        watch = self._liveness_watch()
        for spec in self.plan.processes:
            self._processes[spec.name] = ManagedProcess(
                spec,
                session=session,
                log_dir=self.settings.logs_dir,
                env=env,
                stop_grace_s=self.settings.stop_grace_s,
                max_restarts=self.settings.max_restarts,
                on_change=self._on_process_change,
                liveness=watch if spec.role is Role.ENGINE else None,
                on_restart=self._on_restart,
            )
        self.settings.adapters_dir.mkdir(parents=True, exist_ok=True)
        interval = self.settings.progress_interval_s
        async with StartProgress(self.console, interval_s=interval, began=self._began) as progress:

            async def start(spec: ProcessSpec) -> None:
                process = self._processes[spec.name]
                async with progress.starting(spec.name, process.log_path):
                    took = await process.start()
                progress.say(f"[green]ready[/] {spec.name} on {spec.url} (took {took:.1f}s)")

            async def start_replica(replica: ReplicaPlan) -> None:
                await start(replica.engine)
                await start(replica.sidecar)

            try:
                async with asyncio.TaskGroup() as group:
                    for replica in self._running_replicas():
                        group.create_task(start_replica(replica))
            except* StartError as failed:
                raise failed.exceptions[0] from None
            await start(self.plan.gateway)

    async def _serve(self, session: aiohttp.ClientSession) -> None:
        """Reconcile adapters on a timer, and at once when something changed; run the
        autoscaler beside it when a model asks for autoscaling."""
        if any(m.spec.autoscaling.enabled for m in self.declarations.models):
            gateway_metrics = f"http://127.0.0.1:{self.settings.gateway_port}/metrics"

            async def gateways() -> list[str]:
                return [gateway_metrics]

            decider = Decider(
                EngineScraper(session, timeout_s=2.0),
                GatewayDemandReader(
                    session, gateways, timeout_s=2.0, headers=admin_token.bearer(self._admin_token)
                ),
                AutoscalerMetrics(self.registry),
            )
            autoscaler = LocalAutoscaler(self, decider)
            never = asyncio.Event()  # the task is cancelled at shutdown
            self._in_background(
                autoscaler.run(never, interval_seconds=self.settings.autoscale_interval_s)
            )
        while True:
            await self._reconcile_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.reconcile_interval_s)
            self._wake.clear()

    async def _reconcile_once(self) -> None:
        if self._reconciler is None:
            return
        pods = self._replica_views()
        try:
            statuses = await self._reconciler.reconcile(list(self._store), pods)
        except Exception as exc:  # noqa: BLE001 - a failed round is retried on the next tick
            self.console.print(f"[yellow]adapter reconciliation failed, will retry:[/] {exc}")
            return
        loaded: dict[str, list[str]] = {}
        for name, status in statuses.items():
            self._store.set_status(name, status)
            for placed in status.loaded_on:
                loaded.setdefault(placed.pod, []).append(name)
        self._loaded = loaded

    async def _stop_all(self) -> None:
        """The gateway first (no new requests), then the sidecars, then the engines."""
        replicas = self.plan.replicas  # every slot: stopping one never started is a no-op
        stages = [[self.plan.gateway], [r.sidecar for r in replicas], [r.engine for r in replicas]]
        for stage in stages:
            await asyncio.gather(
                *(self._processes[s.name].stop() for s in stage if s.name in self._processes)
            )
        started = sum(1 for p in self._processes.values() if p.pid is not None)
        if started:
            self.console.print(f"stopped {started} processes")

    def _on_process_change(self, process: ManagedProcess) -> None:
        if process.phase is Phase.READY:
            self._wake.set()  # a (re)started replica gets its adapters at once
        elif process.phase in (Phase.RESTARTING, Phase.FAILED) and process.last_error:
            self.console.print(
                f"[yellow]{process.spec.name}:[/] {process.last_error} ({process.phase})"
            )

    def _on_restart(self, process: ManagedProcess, reason: RestartReason) -> None:
        self._supervisor_metrics.restarted(process.spec.role, reason)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HOIST_HOME": str(self.settings.home),
                "MODEL_REPOSITORY": self.settings.model_repository,
                "LOG_LEVEL": self.settings.log_level,
                "PYTHONUNBUFFERED": "1",
            }
        )
        declared = [
            a.spec.source.removeprefix("file://")
            for a in self.declarations.adapters
            if "://" not in a.spec.source or a.spec.source.startswith("file://")
        ]
        env.update(self.settings.adapter_source_env(declared))
        # the admin API's token: the gateway calls the admin API with it, and accepts it
        # on its own /metrics (the autoscaler above reads the demand there)
        token_file = str(self.settings.admin_token_file)
        env["HOIST_GATEWAY_ADMIN_TOKEN_FILE"] = token_file
        env["HOIST_GATEWAY_METRICS_TOKEN_FILE"] = token_file
        # tenancy: the gateway reads the Tenant documents from the files that declared them
        tenant_files = sorted(
            {self.declarations.files[(t.kind, t.metadata.name)] for t in self.declarations.tenants}
        )
        if tenant_files:
            env["HOIST_GATEWAY_TENANTS_FILES"] = " ".join(
                str(Path(f).resolve()) for f in tenant_files
            )
        return env

    def _write_run_file(self) -> None:
        path = self.settings.run_file
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {
            "pid": os.getpid(),
            "adminUrl": f"http://127.0.0.1:{self.settings.admin_port}",
            "gatewayUrl": f"http://{self.settings.host}:{self.settings.gateway_port}",
            "started": time.time(),
            "adminTokenFile": str(self.settings.admin_token_file),
        }
        path.write_text(json.dumps(info))

    def _print_ready(self) -> None:
        url = f"http://{self.settings.host}:{self.settings.gateway_port}"
        models = ", ".join(m.metadata.name for m in self.declarations.models)
        took = time.monotonic() - self._began
        self.console.print(
            f"[bold green]Hoist is serving[/] {models} at {url}/v1 after {took:.0f}s  "
            f"(`hoist status` to watch; Ctrl-C to stop)"
        )


_SEVERITY = [
    Phase.FAILED,
    Phase.RESTARTING,
    Phase.STARTING,
    Phase.PENDING,
    Phase.STOPPED,
    Phase.READY,
]


def _combined_phase(phases: list[Phase]) -> Phase:
    """The phase of a replica: the worst of its engine's and its sidecar's."""
    return min(phases, key=_SEVERITY.index)
