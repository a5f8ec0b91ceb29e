"""A stand-in for the embedded default's admin API (docs/embedded-contracts.md), for tests.

Serves `GET /v1/state` from `models` and the adapter store `GET/PUT/DELETE /v1/adapters`.
Real HTTP on 127.0.0.1; replaced by the supervisor's own admin API once it is on main.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


class FakeAdmin:
    def __init__(self) -> None:
        self.models: list[dict[str, Any]] = []
        self.adapters: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.state_requests = 0

    def add_model(
        self, name: str, engine_urls: list[str], adapters: tuple[str, ...] = (), **extra: Any
    ) -> None:
        replicas = [
            {
                "name": f"{name}-{i}",
                "engineUrl": url,
                "sidecarUrl": "http://127.0.0.1:1",
                "phase": "Ready",
                "ready": True,
                "adapters": list(adapters),
                "restarts": 0,
            }
            for i, url in enumerate(engine_urls)
        ]
        model = {"name": name, "namespace": "default", "engine": "sim", "routingPolicy": "default"}
        model |= {
            "tenant": None,
            "desiredReplicas": len(replicas),
            "maxLoras": 4,
            "replicas": replicas,
        }
        self.models.append(model | extra)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v1/state", self._state)
        app.router.add_get("/v1/adapters", self._list)
        app.router.add_get("/v1/adapters/{name}", self._get)
        app.router.add_put("/v1/adapters/{name}", self._put)
        app.router.add_delete("/v1/adapters/{name}", self._delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _state(self, _: web.Request) -> web.Response:
        self.state_requests += 1
        gateway = {"url": "http://127.0.0.1:8080", "phase": "Ready"}
        return web.json_response(
            {"models": self.models, "adapters": list(self.adapters.values()), "gateway": gateway}
        )

    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response({"items": list(self.adapters.values())})

    async def _get(self, request: web.Request) -> web.Response:
        found = self.adapters.get(request.match_info["name"])
        if found is None:
            return web.json_response({"error": {"message": "no such adapter"}}, status=404)
        return web.json_response(found)

    async def _put(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        doc = await request.json()
        base = doc["spec"]["baseModel"]
        if base not in {m["name"] for m in self.models}:
            error = {"message": f"unknown baseModel {base}", "field": "spec.baseModel"}
            return web.json_response({"error": error}, status=400)
        created = name not in self.adapters
        doc["status"] = {"phase": "Pending", "loadedOn": [], "readyReplicas": 0}
        self.adapters[name] = doc
        return web.json_response(doc, status=201 if created else 200)

    async def _delete(self, request: web.Request) -> web.Response:
        if self.adapters.pop(request.match_info["name"], None) is None:
            return web.json_response({"error": {"message": "no such adapter"}}, status=404)
        return web.json_response({"deleted": True})
