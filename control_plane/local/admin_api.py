"""The supervisor's admin API on 127.0.0.1: state for `hoist status` and the gateway, and
the adapter store (`/v1/adapters`), which the gateway's adapter API writes through.

Routes (contract: docs/embedded-contracts.md):
    GET /healthz, GET /metrics, GET /v1/state,
    GET /v1/adapters, GET|PUT|DELETE /v1/adapters/{name}

Every route but `/healthz` needs the supervisor's token (`admin_token.py`): 401 without.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from control_plane.api import LoraAdapter
from control_plane.api.embedded import EmbeddedState
from control_plane.documents import dump
from control_plane.local.admin_token import presented
from control_plane.local.store import AdapterStore, StoreError

_MAX_BODY = 1 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminBackend(Protocol):
    """What the admin API needs from the supervisor."""

    @property
    def store(self) -> AdapterStore: ...

    @property
    def registry(self) -> CollectorRegistry:
        """The supervisor's Prometheus metrics (adapter reconciliation, drift repairs)."""
        ...

    def state(self) -> EmbeddedState: ...

    def adapters_changed(self) -> None:
        """Wake the adapter reconciler (called after a create or update)."""

    async def remove_adapter(self, adapter: LoraAdapter) -> None:
        """Unload `adapter` from every replica; raises if a replica cannot be reached."""


def _error(status: int, message: str, field: str = "") -> web.Response:
    body = {"error": {"message": message, "field": field or None, "code": status}}
    return web.json_response(body, status=status)


def build_app(backend: AdminBackend, token: str) -> web.Application:
    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/healthz" and not presented(
            request.headers.get("Authorization", ""), token
        ):
            return _error(401, "the admin API needs the token in <home>/run/admin-token")
        return await handler(request)

    app = web.Application(client_max_size=_MAX_BODY, middlewares=[require_token])
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/metrics")
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(backend.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @routes.get("/v1/state")
    async def state(_: web.Request) -> web.Response:
        text = backend.state().model_dump_json(by_alias=True, exclude_none=True)
        return web.Response(text=text, content_type="application/json")

    @routes.get("/v1/adapters")
    async def list_adapters(_: web.Request) -> web.Response:
        return web.json_response({"items": [dump(a) for a in backend.store]})

    @routes.get("/v1/adapters/{name}")
    async def get_adapter(request: web.Request) -> web.Response:
        adapter = backend.store.get(request.match_info["name"])
        if adapter is None:
            return _error(404, f"adapter {request.match_info['name']!r} not found")
        return web.json_response(dump(adapter))

    @routes.put("/v1/adapters/{name}")
    async def put_adapter(request: web.Request) -> web.Response:
        try:
            document: Any = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body is not valid JSON")
        if not isinstance(document, dict):
            return _error(400, "the body must be a LoraAdapter document (a JSON object)")
        try:
            adapter, created = backend.store.put(document, name=request.match_info["name"])
        except StoreError as exc:
            return _error(400, str(exc), exc.field)
        backend.adapters_changed()
        return web.json_response(dump(adapter), status=201 if created else 200)

    @routes.delete("/v1/adapters/{name}")
    async def delete_adapter(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        adapter = backend.store.get(name)
        if adapter is None:
            return _error(404, f"adapter {name!r} not found")
        try:
            await backend.remove_adapter(adapter)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the adapter, and says why
            return _error(503, f"could not unload {name!r} everywhere, kept: {exc}")
        backend.store.delete(name)
        return web.json_response(dump(adapter))

    app.add_routes(routes)
    return app
