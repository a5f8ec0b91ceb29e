"""The routes that describe an engine: `GET /health`, `GET|POST /ping`, `GET /version`,
`GET /v1/models` (the base model and its loaded adapters) and `GET /metrics`."""

from __future__ import annotations

from aiohttp import web

from data_plane.inference.simulator.engine import SimEngine
from data_plane.inference.simulator.http_framing import json_response
from data_plane.inference.simulator.protocol.identity import VLLM_VERSION, model_card


class InfoRoutes:
    """Health, identity, models and metrics of one engine."""

    def __init__(self, engine: SimEngine, *, created: int) -> None:
        self.engine = engine
        self.created = created
        """The base model's `created` time in `/v1/models`."""

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_route("*", "/ping", self.health)
        app.router.add_get("/version", self.version)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(self, _: web.Request) -> web.Response:
        return json_response({"version": VLLM_VERSION})

    async def models(self, _: web.Request) -> web.Response:
        engine = self.engine
        cards = [
            model_card(
                model_id=engine.served_model_name,
                created=self.created,
                root=engine.served_model_name,
                parent=None,
                max_model_len=engine.max_model_len,
            )
        ]
        cards.extend(
            model_card(
                model_id=adapter.name,
                created=adapter.created,
                root=adapter.path,
                parent=engine.served_model_name,
                max_model_len=None,
            )
            for adapter in engine.adapters.values()
        )
        return json_response({"object": "list", "data": cards})

    async def metrics(self, _: web.Request) -> web.Response:
        self.engine.refresh_metrics()
        return web.Response(
            body=self.engine.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
