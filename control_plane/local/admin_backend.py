"""The admin API's backend in the supervisor (`admin_api.AdminBackend`), and its server.

The state it serves (`GET /v1/state`: what `hoist status` shows and the gateway's local
discovery routes on) is read from the process table; adapter changes go to the store and
wake the adapter loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

from control_plane.api import LoraAdapter
from control_plane.api.embedded import EmbeddedState, ModelState
from control_plane.documents import Declarations
from control_plane.local.adapter_loop import AdapterLoop
from control_plane.local.admin_api import AdminBackend, build_app
from control_plane.local.process_table import ProcessTable
from control_plane.local.store import AdapterStore


class SupervisorBackend:
    def __init__(
        self,
        declarations: Declarations,
        table: ProcessTable,
        store: AdapterStore,
        loop: AdapterLoop,
        registry: CollectorRegistry,
        *,
        gateway_url: str,
    ) -> None:
        self._declarations = declarations
        self._table = table
        self._store = store
        self._loop = loop
        self._registry = registry
        self._gateway_url = gateway_url

    @property
    def store(self) -> AdapterStore:
        return self._store

    @property
    def registry(self) -> CollectorRegistry:
        return self._registry

    def adapters_changed(self) -> None:
        self._loop.wake()

    async def remove_adapter(self, adapter: LoraAdapter) -> None:
        await self._loop.remove(adapter)

    def state(self) -> EmbeddedState:
        table = self._table
        models = []
        for model in self._declarations.models:
            name = model.metadata.name
            models.append(
                ModelState(
                    name=name,
                    namespace=model.metadata.namespace,
                    engine=model.spec.engine,
                    routing_policy=model.spec.routing_policy,
                    tenant=model.spec.tenant,
                    desired_replicas=len(table.active[name]),
                    max_loras=model.spec.lora.max_loras,
                    replicas=[table.replica_state(r) for r in table.running_replicas(name)],
                )
            )
        return EmbeddedState(
            models=models,
            adapters=list(self._store),
            tenants=list(self._declarations.tenants),
            gateway=table.gateway_state(self._gateway_url),
        )


@contextlib.asynccontextmanager
async def admin_server(backend: AdminBackend, token: str) -> AsyncIterator[web.AppRunner]:
    """The admin API's app, set up (not yet listening: `start_admin` binds it), cleaned up
    on exit."""
    runner = web.AppRunner(build_app(backend, token), access_log=None)
    await runner.setup()
    try:
        yield runner
    finally:
        await runner.cleanup()


async def start_admin(runner: web.AppRunner, port: int) -> None:
    """Listen on 127.0.0.1:`port` (only the supervisor's own machine reaches it)."""
    await web.TCPSite(runner, "127.0.0.1", port).start()
