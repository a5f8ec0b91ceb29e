"""A small real HTTP server that plays an inference pod's sidecar (design.md section 2).

It speaks the sidecar's adapter API on 127.0.0.1 (ephemeral port) and keeps what it holds
in memory; tests make it refuse sources, forget everything (an engine restart), or stop
answering (an unreachable pod).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeSidecar:
    refuse_sources: set[str] = field(default_factory=set)
    """PUTs with one of these sources answer 422 SourceNotFound."""
    loading: bool = False
    """When true, PUT answers 202 and the adapter stays `Loading`."""
    hold: asyncio.Event | None = None
    """When set to an Event, each PUT waits for it before answering (a slow load)."""
    put_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a PUT arrives (before it waits for `hold`)."""
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(method, adapter name) of every PUT and DELETE."""
    credentials: dict[str, dict[str, str] | None] = field(default_factory=dict)
    """The `credentials` of the last PUT of each adapter (None: the PUT had none)."""
    url: str = ""
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _port: int = 0

    def puts(self, name: str | None = None) -> int:
        return sum(1 for m, n in self.calls if m == "PUT" and name in (None, n))

    def deletes(self, name: str | None = None) -> int:
        return sum(1 for m, n in self.calls if m == "DELETE" and name in (None, n))

    def loaded(self) -> set[str]:
        return {n for n, a in self.adapters.items() if a["phase"] == "Loaded"}

    def forget(self) -> None:
        """What an engine restart without the sidecar's help looks like."""
        self.adapters.clear()

    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response({"items": list(self.adapters.values())})

    async def _put(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.json()
        self.calls.append(("PUT", name))
        self.credentials[name] = body.get("credentials")
        self.put_arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        source = body["source"]
        if source in self.refuse_sources:
            return web.json_response(
                {
                    "error": {
                        "message": f"no file at {source}",
                        "type": "adapter_error",
                        "reason": "SourceNotFound",
                    }
                },
                status=422,
            )
        sha = body.get("sha256") or hashlib.sha256(source.encode()).hexdigest()
        phase = "Loading" if self.loading else "Loaded"
        self.adapters[name] = {"name": name, "phase": phase, "source": source, "sha256": sha}
        return web.json_response(self.adapters[name], status=202 if self.loading else 200)

    async def _delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.calls.append(("DELETE", name))
        if self.adapters.pop(name, None) is None:
            return web.json_response(
                {"error": {"message": "not found", "reason": "NotFound"}}, status=404
            )
        return web.json_response({"name": name, "deleted": True})

    async def _ok(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/adapters", self._list)
        app.router.add_put("/adapters/{name}", self._put)
        app.router.add_delete("/adapters/{name}", self._delete)
        app.router.add_get("/healthz", self._ok)
        app.router.add_get("/readyz", self._ok)
        return app

    @property
    def port(self) -> int:
        return self._port

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (`port` 0: an ephemeral one; a fixed one to come back on)."""
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", port or self._port)
        await self._site.start()
        server = self._runner.server
        assert server is not None
        sockets = self._runner.addresses
        self._port = int(sockets[0][1])
        self.url = f"http://127.0.0.1:{self._port}"

    async def stop(self) -> None:
        """Stop answering (the port stays known, so `start()` can come back on it)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def fake_sidecars(n: int) -> AsyncIterator[list[FakeSidecar]]:
    sidecars = [FakeSidecar() for _ in range(n)]
    try:
        for sidecar in sidecars:
            await sidecar.start()
        yield sidecars
    finally:
        for sidecar in sidecars:
            await sidecar.stop()
