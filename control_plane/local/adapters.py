"""The embedded default's adapter reconciler: the LoRA manager's decisions, local replicas.

The supervisor calls `reconcile` whenever its replicas or declarations change, and
periodically (drift: an engine restarted and lost its adapters). It observes each
replica's sidecar, asks the same pure functions as the Kubernetes operator where every
adapter goes, applies the plan through the sidecars and returns the new statuses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import aiohttp

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.lora_manager.cycle import AdapterCycle, AdapterMetrics
from control_plane.lora_manager.placement import PodRef
from control_plane.lora_manager.plan import assume_placed
from control_plane.lora_manager.sidecar_client import (
    SidecarClient,
)
from control_plane.lora_manager.status import RetryPolicy


@dataclass(frozen=True)
class LocalPod:
    """One running replica as the supervisor sees it."""

    name: str
    """e.g. `llama-3-8b-sim-0`."""
    model: str
    """The Model's `metadata.name`."""
    sidecar_url: str
    """e.g. `http://127.0.0.1:8200`."""
    ready: bool


class Replica(Protocol):
    """What the reconciler reads of a replica (`LocalPod`, or the supervisor's own view)."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def sidecar_url(self) -> str: ...
    @property
    def ready(self) -> bool: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LocalAdapterReconciler:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        now: Callable[[], datetime] = _utcnow,
        policy: RetryPolicy | None = None,
        metrics: AdapterMetrics | None = None,
        sidecar_timeout_seconds: float = 60.0,
    ) -> None:
        client = SidecarClient(session, timeout_seconds=sidecar_timeout_seconds)
        self._cycle = AdapterCycle(client, policy=policy, metrics=metrics, now=now)

    async def reconcile(
        self, adapters: list[LoraAdapter], pods: Sequence[Replica]
    ) -> dict[str, LoraAdapterStatus]:
        """Bring every pod in line with `adapters`; the new status per adapter name.

        Adapters are placed in name order, each seeing the ones placed before it, so that
        `fewest-adapters` spreads them. Adapters a pod holds that nothing declares for its
        model are unloaded.
        """
        refs = [PodRef(p.name, p.model, p.ready, p.sidecar_url) for p in pods]
        views = await self._cycle.observe(refs)
        models = {p.model for p in pods}
        statuses: dict[str, LoraAdapterStatus] = {}
        for adapter in sorted(adapters, key=lambda a: a.metadata.name):
            outcome = await self._cycle.reconcile(
                adapter, refs, views, base_model_found=adapter.spec.base_model in models
            )
            statuses[adapter.metadata.name] = outcome.status
            if outcome.plan is not None:
                views = assume_placed(views, outcome.plan)
        declared: dict[str, set[str]] = defaultdict(set)
        for adapter in adapters:
            declared[adapter.spec.base_model].add(adapter.metadata.name)
        await self._cycle.unload_orphans(refs, views, declared)
        return statuses

    async def remove(self, adapter: LoraAdapter, pods: Sequence[Replica]) -> None:
        """Unload `adapter` from every pod (`RemovalIncompleteError` if a ready one could not
        be reached: the caller keeps the adapter and tries again)."""
        refs = [PodRef(p.name, p.model, p.ready, p.sidecar_url) for p in pods]
        await self._cycle.remove(adapter.metadata.namespace, adapter.metadata.name, refs)
