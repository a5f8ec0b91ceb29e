"""`hoist up`: run the declared models on this machine as local processes.

The supervisor is the embedded default's kubelet, API server and operator in one: it starts
an engine and a sidecar per `Model` replica and one gateway, restarts what crashes, keeps
the adapter store, drives the adapter reconciler, and on SIGINT/SIGTERM stops every child
process group before it exits. This module wires the parts and runs them in order:

| part | module |
|---|---|
| processes, replica slots, replica states | `process_table.py` |
| the autoscaler's target and loop | `scaling.py` |
| the adapter reconcile loop | `adapter_loop.py` |
| the admin API's backend and server | `admin_backend.py` (routes: `admin_api.py`) |
| stop signals; the run file | `signals.py`; `run_file.py` |
| the children's environment | `child_env.py` |
| console output; start-up progress | `report.py`; `progress.py` |
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry
from rich.console import Console

from control_plane.api.liveness import RestartReason
from control_plane.api.simulator_args import kv_events_problem
from control_plane.documents import Declarations
from control_plane.local import admin_token
from control_plane.local.adapter_loop import AdapterLoop
from control_plane.local.admin_backend import SupervisorBackend, admin_server, start_admin
from control_plane.local.background import Background
from control_plane.local.child_env import child_env
from control_plane.local.metrics import SupervisorMetrics
from control_plane.local.plan import ProcessSpec, ReplicaPlan
from control_plane.local.preflight import check_ports, plan_for, read_run_file
from control_plane.local.process import ManagedProcess, Phase, StartError
from control_plane.local.process_table import ProcessTable
from control_plane.local.progress import StartProgress
from control_plane.local.report import Report
from control_plane.local.run_file import gateway_url, remove_run_files, write_run_file
from control_plane.local.scaling import LocalScaleTarget, run_autoscaler
from control_plane.local.settings import SupervisorSettings
from control_plane.local.signals import stop_on_signals
from control_plane.local.store import AdapterStore, restore_notes
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
        self.report = Report(console)
        self.registry = CollectorRegistry()
        self._supervisor_metrics = SupervisorMetrics(self.registry)
        self._store = AdapterStore(
            store_dir, lambda: {m.metadata.name for m in declarations.models}
        )
        self.table = ProcessTable(self.plan, declarations.models)
        self._background = Background()
        self._adapters = AdapterLoop(
            self._store,
            self.table,
            self.report,
            OperatorMetrics(self.registry),
            interval_s=settings.reconcile_interval_s,
        )
        self.backend = SupervisorBackend(
            declarations,
            self.table,
            self._store,
            self._adapters,
            self.registry,
            gateway_url=gateway_url(settings),
        )
        self.fleet = LocalScaleTarget(
            declarations.models,
            self.table,
            self._background,
            self.report,
            drain_s=settings.drain_s,
        )
        self._admin_token = ""
        self._began = time.monotonic()

    async def run(self) -> int:
        """Start everything, serve until SIGINT/SIGTERM, stop everything; the exit code."""
        main = asyncio.current_task()
        problems = check_ports(self.plan, self.settings)
        running = read_run_file(self.settings.run_file)
        if running is not None:
            problems.insert(
                0, f"another `hoist up` is running (pid {running['pid']}); stop it first"
            )
        if problems:
            self.report.not_started(problems)
            return EXIT_BAD_SETUP
        with stop_on_signals(main, stopping=self.report.stopping, force=self.table.kill_all):
            try:
                return await self._run_started()
            except asyncio.CancelledError:
                return EXIT_OK  # a requested stop; _run_started already stopped everything

    async def _run_started(self) -> int:
        self._admin_token = admin_token.issue(self.settings.admin_token_file)
        write_run_file(self.settings)
        declared = {a.metadata.name for a in self.declarations.adapters}
        restored = sorted(a.metadata.name for a in self._store if a.metadata.name not in declared)
        for line in restore_notes(restored, self._store.root, self.settings.store_dir):
            self.report.plain(line)
        for model in self.declarations.models:
            problem = kv_events_problem(model)
            if problem is not None:
                self.report.plain(f"note: Model {model.metadata.name}: {problem}")
        for adapter in self.declarations.adapters:
            self._store.declare(adapter)  # declared adapters join those added through the API
        async with (
            admin_server(self.backend, self._admin_token) as admin,
            aiohttp.ClientSession() as session,
        ):
            self._adapters.connect(session)
            try:
                await start_admin(admin, self.settings.admin_port)
                await self._start_all(session)
                self.report.serving(
                    [m.metadata.name for m in self.declarations.models],
                    gateway_url(self.settings),
                    time.monotonic() - self._began,
                )
                await self._serve(session)
                return EXIT_OK
            except StartError as exc:
                self.report.start_failed(exc)
                return EXIT_START_FAILED
            finally:
                await self._background.cancel_all()
                await asyncio.shield(self._stop_all())
                remove_run_files(self.settings)

    async def _start_all(self, session: aiohttp.ClientSession) -> None:
        env = child_env(self.settings, self.declarations, os.environ)
        self.table.create(
            session,
            self.settings,
            env,
            on_change=self._on_process_change,
            on_restart=self._on_restart,
        )
        self.settings.adapters_dir.mkdir(parents=True, exist_ok=True)
        interval = self.settings.progress_interval_s
        console = self.report.console
        async with StartProgress(console, interval_s=interval, began=self._began) as progress:

            async def start(spec: ProcessSpec) -> None:
                process = self.table.processes[spec.name]
                async with progress.starting(spec.name, process.log_path):
                    took = await process.start()
                progress.say(f"[green]ready[/] {spec.name} on {spec.url} (took {took:.1f}s)")

            async def start_replica(replica: ReplicaPlan) -> None:
                await start(replica.engine)
                await start(replica.sidecar)

            try:
                async with asyncio.TaskGroup() as group:
                    for replica in self.table.running_replicas():
                        group.create_task(start_replica(replica))
            except* StartError as failed:
                raise failed.exceptions[0] from None
            await start(self.plan.gateway)

    async def _serve(self, session: aiohttp.ClientSession) -> None:
        """Reconcile adapters on a timer, and at once when something changed; run the
        autoscaler beside it when a model asks for autoscaling."""
        if any(m.spec.autoscaling.enabled for m in self.declarations.models):
            self._background.spawn(
                run_autoscaler(
                    self.fleet,
                    session,
                    self.registry,
                    gateway_metrics=f"http://127.0.0.1:{self.settings.gateway_port}/metrics",
                    headers=admin_token.bearer(self._admin_token),
                    interval_s=self.settings.autoscale_interval_s,
                )
            )
        await self._adapters.run()

    async def _stop_all(self) -> None:
        self.report.stopped(await self.table.stop_all())

    def _on_process_change(self, process: ManagedProcess) -> None:
        if process.phase is Phase.READY:
            self._adapters.wake()  # a (re)started replica gets its adapters at once
        else:
            self.report.process_changed(process)

    def _on_restart(self, process: ManagedProcess, reason: RestartReason) -> None:
        self._supervisor_metrics.restarted(process.spec.role, reason)
