"""The supervisor's real admin API (`control_plane.local.admin_api`) over a real adapter
store, for tests of the gateway's local mode that need no supervisor.

The backend reports one model served by the given engines. It loads each stored adapter
onto them by name under a placeholder path (for a simulator started with
`--accept-missing-lora-paths`), never from the adapter's `source`: nothing fetches a
source, whatever a test writes there.

    async with running_admin_api(SimAdminBackend("llama", [engine_url])) as admin_url:
        ...
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from control_plane.api import LoraAdapter
from control_plane.api.embedded import EmbeddedState, ModelState, ReplicaPhase, ReplicaState
from control_plane.local import admin_token
from control_plane.local.admin_api import build_app
from control_plane.local.store import AdapterStore


class SimAdminBackend:
    def __init__(self, model: str, engine_urls: list[str]) -> None:
        self.model = model
        self.engine_urls = engine_urls
        self.store = AdapterStore(None, lambda: {model})
        self.registry = CollectorRegistry()
        self.removed: list[str] = []
        self.loaded: set[str] = set()
        self.token_file = Path()
        """The admin API's token, once `running_admin_api` serves it."""

    def state(self) -> EmbeddedState:
        replicas = [
            ReplicaState(
                name=f"{self.model}-{i}",
                engine_url=url,
                sidecar_url="http://127.0.0.1:1",
                phase=ReplicaPhase.READY,
                ready=True,
                adapters=sorted(self.loaded),
            )
            for i, url in enumerate(self.engine_urls)
        ]
        model = ModelState(
            name=self.model, engine="sim", routing_policy="round-robin",
            desired_replicas=len(replicas), max_loras=4, replicas=replicas,
        )  # fmt: skip
        return EmbeddedState(models=[model], adapters=list(self.store))

    def adapters_changed(self) -> None:
        """Load what is stored and not loaded yet, before the admin API answers the write
        (the engine is another process: a short blocking call, so no request sees an
        adapter the store has and no replica holds)."""
        for adapter in self.store:
            name = adapter.metadata.name
            if name not in self.loaded and self._call("load", name):
                self.loaded.add(name)

    async def remove_adapter(self, adapter: LoraAdapter) -> None:
        name = adapter.metadata.name
        self.removed.append(name)
        self.loaded.discard(name)
        self._call("unload", name)

    def _call(self, verb: str, name: str) -> bool:
        body = json.dumps({"lora_name": name, "lora_path": f"/nonexistent/adapters/{name}"})
        ok = True
        for url in self.engine_urls:
            request = urllib.request.Request(
                f"{url}/v1/{verb}_lora_adapter",
                data=body.encode(),
                headers={"content-type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    ok = ok and resp.status == 200
            except urllib.error.HTTPError as exc:
                exc.close()
                ok = False
        return ok


@asynccontextmanager
async def running_admin_api(backend: SimAdminBackend) -> AsyncIterator[str]:
    """The admin API on an ephemeral 127.0.0.1 port; yields its URL. Its token is in
    `backend.token_file` (for the gateway's `admin_token_file`)."""
    backend.token_file = Path(tempfile.mkdtemp(prefix="hoist-admin-")) / "run" / "admin-token"
    runner = web.AppRunner(
        build_app(backend, admin_token.issue(backend.token_file)), access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        shutil.rmtree(backend.token_file.parent.parent, ignore_errors=True)
