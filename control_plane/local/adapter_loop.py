"""The embedded default's adapter reconcile loop: every `interval_s`, and at once when
woken (an adapter added or removed through the admin API, a replica that became ready).

Each round hands the store's adapters and the running replicas to the reconciler
(`adapters.py`, the LoRA manager's cycle), writes the statuses into the store and records
what each replica holds loaded in the process table. A failed round is retried on the next.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from control_plane.api import LoraAdapter
from control_plane.local.adapters import LocalAdapterReconciler
from control_plane.local.process_table import ProcessTable
from control_plane.local.report import Report
from control_plane.local.store import AdapterStore
from control_plane.operator.metrics import OperatorMetrics


class AdapterLoop:
    def __init__(
        self,
        store: AdapterStore,
        table: ProcessTable,
        report: Report,
        metrics: OperatorMetrics,
        *,
        interval_s: float,
    ) -> None:
        self._store = store
        self._table = table
        self._report = report
        self._metrics = metrics
        self._interval_s = interval_s
        self._reconciler: LocalAdapterReconciler | None = None  # needs the HTTP session
        self._wake = asyncio.Event()

    def connect(self, session: aiohttp.ClientSession) -> None:
        """Reach the sidecars over `session` (until then a round does nothing)."""
        self._reconciler = LocalAdapterReconciler(session, metrics=self._metrics)

    def wake(self) -> None:
        """Run a round now."""
        self._wake.set()

    async def remove(self, adapter: LoraAdapter) -> None:
        """Unload `adapter` from every running replica (raises if a ready one is unreachable)."""
        if self._reconciler is not None:
            await self._reconciler.remove(adapter, self._table.replica_views())

    async def run(self) -> None:
        """A round, then wait for the timer or a wake-up; until cancelled."""
        while True:
            await self.reconcile_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()

    async def reconcile_once(self) -> None:
        if self._reconciler is None:
            return
        pods = self._table.replica_views()
        try:
            statuses = await self._reconciler.reconcile(list(self._store), pods)
        except Exception as exc:  # noqa: BLE001 - a failed round is retried on the next tick
            self._report.reconcile_failed(exc)
            return
        loaded: dict[str, list[str]] = {}
        for name, status in statuses.items():
            self._store.set_status(name, status)
            for placed in status.loaded_on:
                loaded.setdefault(placed.pod, []).append(name)
        self._table.loaded = loaded
