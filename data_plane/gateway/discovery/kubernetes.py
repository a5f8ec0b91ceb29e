"""Kubernetes: replicas are the pods of each Model; adapters are LoraAdapter resources.

Learnt by list-then-watch, not by polling (`informer`): per namespace, one watch each on
Models, on pods labelled `serving.hoist.dev/model` and on LoraAdapters. `fetch` builds the
fleet from what the watches hold (no API call); `wait_changed` returns as soon as any of
them changed, so the gateway routes a new or changed pod at once, whatever the discovery
interval (which remains a safety net).

The first namespace is the gateway's own; the others hold dedicated Models (a tenant's
namespace with its GPU quota). A Model or LoraAdapter whose name an earlier namespace (or
an earlier kind) already serves is left out, and logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lightkube.core.client import LabelSelector

from control_plane.api.constants import LABEL_MODEL
from data_plane.gateway.discovery import DiscoveryError
from data_plane.gateway.discovery.informer import Informer, WatchTiming
from data_plane.gateway.discovery.kube_api import LORA_ADAPTERS, MODELS, PODS, Kind, KubeApi
from data_plane.gateway.discovery.kube_fleet import (
    claim,
    fleet_from_resources,
    model_label,
    resource_name,
)
from data_plane.gateway.fleet import FleetSnapshot
from data_plane.gateway.settings import GatewaySettings

log = logging.getLogger("hoist.gateway.discovery")


def watch_timing(settings: GatewaySettings) -> WatchTiming:
    return WatchTiming(
        server_timeout_s=settings.kube_watch_timeout_s,
        silence_s=settings.kube_watch_silence_s,
        backoff_base_s=settings.kube_backoff_base_s,
        backoff_cap_s=settings.kube_backoff_cap_s,
    )


class KubernetesDiscovery:
    def __init__(
        self,
        api: KubeApi,
        namespaces: str | tuple[str, ...],
        engine_port: int,
        timing: WatchTiming,
        *,
        sync_timeout_s: float = 10.0,
    ) -> None:
        self._api = api
        self._namespaces = (namespaces,) if isinstance(namespaces, str) else namespaces
        self._engine_port = engine_port
        self._sync_timeout_s = sync_timeout_s
        self._changed = asyncio.Event()
        self._reported: set[tuple[str, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.informers: dict[tuple[str, str], Informer] = {}
        model_pods: LabelSelector = {LABEL_MODEL: None}  # the pods that carry the label
        watched: tuple[tuple[Kind, LabelSelector | None], ...] = (
            (MODELS, None),
            (PODS, model_pods),
            (LORA_ADAPTERS, None),
        )
        for ns in self._namespaces:
            for kind, labels in watched:
                informer = Informer(api, kind, ns, timing, self._changed.set, labels=labels)
                self.informers[(ns, kind.plural)] = informer

    async def start(self) -> None:
        """Start the watches; wait (bounded) for their first lists."""
        for key, informer in self.informers.items():
            name = f"gateway-watch-{key[1]}-{key[0]}"
            self._tasks.append(asyncio.create_task(informer.run(), name=name))
        synced = [i.synced.wait() for i in self.informers.values()]
        try:
            async with asyncio.timeout(self._sync_timeout_s):
                await asyncio.gather(*synced)
        except TimeoutError:
            log.warning("not every watch has listed yet; discovery waits for them")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._api.aclose()

    async def wait_changed(self) -> None:
        """Return once something watched changed since the last call."""
        await self._changed.wait()
        self._changed.clear()

    async def fetch(self) -> FleetSnapshot:
        missing = [i for i in self.informers.values() if not i.synced.is_set()]
        if missing:
            errors = {str(i.last_error) for i in missing if i.last_error is not None}
            raise DiscoveryError(f"not listed yet: {missing} {'; '.join(sorted(errors))}")
        self._changed.clear()  # what follows reads everything changed so far
        models: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        adapters: list[dict[str, Any]] = []
        taken: set[str] = set()
        for ns in self._namespaces:
            served = self._claim(ns, self._objects(ns, MODELS.plural), taken)
            models += served
            names = {resource_name(m) for m in served}
            pods += [p for p in self._objects(ns, PODS.plural) if model_label(p) in names]
            adapters += self._claim(ns, self._objects(ns, LORA_ADAPTERS.plural), taken)
        return fleet_from_resources(models, pods, adapters, self._engine_port)

    def _objects(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        cache = self.informers[(namespace, plural)].objects
        return [cache[name] for name in sorted(cache)]

    def _claim(
        self, namespace: str, items: list[dict[str, Any]], taken: set[str]
    ) -> list[dict[str, Any]]:
        claimed, refused = claim(items, taken)
        for name in refused:
            if (namespace, name) not in self._reported:
                self._reported.add((namespace, name))
                log.warning("%s in namespace %s is not served: the name is taken", name, namespace)
        return claimed
