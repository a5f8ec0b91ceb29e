"""The HTTP face of a simulated engine: vLLM's OpenAI-compatible API on aiohttp.web.

Routes (as vLLM 0.32 serves them), one module per family: `routes_info.py` (`GET /health`,
`GET|POST /ping`, `GET /version`, `GET /v1/models`, `GET /metrics`), `routes_completions.py`
(`POST /v1/completions`, `POST /v1/chat/completions`), `routes_responses.py`
(`POST /v1/responses`), `routes_adapters.py` (`POST /v1/load_lora_adapter`,
`POST /v1/unload_lora_adapter`); with `runner="pooling"` (vLLM's `--runner pooling`)
`routes_embeddings.py` (`POST /v1/embeddings`) instead of the three generating routes, as
vLLM registers only the routes of the model's tasks.
Unknown paths answer `{"detail": "Not Found"}` (404), wrong methods
`{"detail": "Method Not Allowed"}` (405), like FastAPI. A request that fails never takes
the engine down: every error becomes an OpenAI-shaped JSON answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry.trace import Tracer

from data_plane.inference.simulator.engine import SimEngine
from data_plane.inference.simulator.generations import Generations
from data_plane.inference.simulator.http_framing import error_response, json_response
from data_plane.inference.simulator.protocol.errors import ApiError
from data_plane.inference.simulator.protocol.identity import system_fingerprint
from data_plane.inference.simulator.routes_adapters import AdapterRoutes
from data_plane.inference.simulator.routes_completions import CompletionRoutes
from data_plane.inference.simulator.routes_embeddings import EmbeddingRoutes
from data_plane.inference.simulator.routes_info import InfoRoutes
from data_plane.inference.simulator.routes_responses import ResponsesRoutes

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimServer:
    """The aiohttp application of one engine."""

    def __init__(
        self,
        engine: SimEngine,
        *,
        accept_missing_lora_paths: bool = False,
        stamp_chunks: bool = False,
        tracer: Tracer | None = None,
        runner: str = "generate",
        embedding_dim: int = 64,
    ) -> None:
        self.engine = engine
        self.tracer = tracer
        """A span per generation (tracing.py); None: tracing is off."""
        self.runner = runner
        """vLLM's `--runner`: `generate` (chat, completions, responses) or `pooling`."""
        self.embedding_dim = embedding_dim
        self.accept_missing_lora_paths = accept_missing_lora_paths
        self.stamp_chunks = stamp_chunks
        """`SimulatorSettings.stamp_chunks`."""
        self.created = int(time.time())
        self.fingerprint = system_fingerprint(engine.served_model_name)

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024 * 1024)
        engine = self.engine
        InfoRoutes(engine, created=self.created).add_to(app)
        if self.runner == "pooling":
            EmbeddingRoutes(engine, embedding_dim=self.embedding_dim).add_to(app)
        else:
            generations = Generations(engine)
            CompletionRoutes(
                generations,
                fingerprint=self.fingerprint,
                stamp_chunks=self.stamp_chunks,
                tracer=self.tracer,
            ).add_to(app)
            ResponsesRoutes(generations).add_to(app)
        AdapterRoutes(engine, accept_missing_lora_paths=self.accept_missing_lora_paths).add_to(app)
        app.on_startup.append(self._start_engine)
        app.on_cleanup.append(self._stop_engine)
        return app

    async def _start_engine(self, _: web.Application) -> None:
        await self.engine.start()

    async def _stop_engine(self, _: web.Application) -> None:
        await self.engine.stop()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except web.HTTPMethodNotAllowed:
            return json_response({"detail": "Method Not Allowed"}, status=405)
        except web.HTTPNotFound:
            return json_response({"detail": "Not Found"}, status=404)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # the engine keeps serving; the client gets a 500
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return error_response(ApiError(str(exc), status=500, err_type="InternalServerError"))
