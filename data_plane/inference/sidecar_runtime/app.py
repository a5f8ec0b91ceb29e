"""The sidecar's HTTP API (design.md section 2): adapters, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

import aiohttp
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from control_plane.api.adapter_sources import AdapterSourcePolicy
from control_plane.api.liveness import LivenessPolicy
from data_plane.inference.sidecar_runtime.engine_client import EngineClient
from data_plane.inference.sidecar_runtime.fetch import AdapterStore
from data_plane.inference.sidecar_runtime.liveness import EngineLiveness
from data_plane.inference.sidecar_runtime.manager import AdapterManager
from data_plane.inference.sidecar_runtime.metrics import SidecarMetrics
from data_plane.inference.sidecar_runtime.plan import AdapterReport
from data_plane.inference.sidecar_runtime.settings import SidecarSettings
from data_plane.inference.sidecar_runtime.source_guard import GuardedResolver
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError, SourceCredentials
from data_plane.inference.sidecar_runtime.tracing import AdapterSpans
from data_plane.telemetry import tracing

log = logging.getLogger(__name__)


_Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096)]


class PutCredentials(BaseModel):
    """Credentials for the fetch, as the keys of the LoraAdapter's Secret name them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    aws_access_key_id: _Secret | None = Field(default=None, alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: _Secret | None = Field(default=None, alias="AWS_SECRET_ACCESS_KEY")
    aws_session_token: _Secret | None = Field(default=None, alias="AWS_SESSION_TOKEN")
    hf_token: _Secret | None = Field(default=None, alias="HF_TOKEN")

    def unwrap(self) -> SourceCredentials:
        def plain(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return SourceCredentials(
            aws_access_key_id=plain(self.aws_access_key_id),
            aws_secret_access_key=plain(self.aws_secret_access_key),
            aws_session_token=plain(self.aws_session_token),
            hf_token=plain(self.hf_token),
        )


class PutAdapter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=2048)
    sha256: str | None = None
    tenant: str | None = Field(default=None, min_length=1, max_length=63)
    """The LoraAdapter's tenant, as the control plane read it: its `{tenant}` roots apply."""
    credentials: PutCredentials | None = None
    """From the Secret the LoraAdapter names (read by the LoRA manager): used for this
    fetch only, never stored, logged or reported."""

    def secrets(self) -> SourceCredentials | None:
        return self.credentials.unwrap() if self.credentials is not None else None


def _error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "adapter_error", "reason": reason}},
        status_code=status,
    )


def _report(item: AdapterReport) -> dict[str, Any]:
    return {k: v for k, v in asdict(item).items() if v is not None}


def get_manager(request: Request) -> AdapterManager:
    manager: AdapterManager = request.app.state.manager
    return manager


def get_metrics(request: Request) -> SidecarMetrics:
    metrics: SidecarMetrics = request.app.state.metrics
    return metrics


def get_liveness(request: Request) -> EngineLiveness:
    liveness: EngineLiveness = request.app.state.liveness
    return liveness


def get_engine(request: Request) -> EngineClient:
    engine: EngineClient = request.app.state.engine
    return engine


ManagerDep = Annotated[AdapterManager, Depends(get_manager)]
MetricsDep = Annotated[SidecarMetrics, Depends(get_metrics)]
EngineDep = Annotated[EngineClient, Depends(get_engine)]
LivenessDep = Annotated[EngineLiveness, Depends(get_liveness)]


def _adapter_store(
    settings: SidecarSettings, downloads: aiohttp.ClientSession, policy: AdapterSourcePolicy
) -> AdapterStore:
    return AdapterStore(
        settings.adapter_dir,
        max_bytes=settings.max_adapter_bytes,
        http=downloads,
        timeout=settings.fetch_timeout_seconds,
        policy=policy,
        hf_endpoint=settings.hf_endpoint,
        hf_token=settings.hf_token.get_secret_value() if settings.hf_token else None,
    )


def _engine_liveness(
    settings: SidecarSettings, http: aiohttp.ClientSession, metrics: SidecarMetrics
) -> EngineLiveness:
    return EngineLiveness(
        f"{settings.engine_url.rstrip('/')}/health",
        http,
        metrics,
        policy=LivenessPolicy(
            unresponsive_after_s=settings.engine_unresponsive_after_seconds,
            start_timeout_s=settings.engine_start_timeout_seconds,
        ),
        interval_s=settings.engine_probe_interval_seconds,
        probe_timeout_s=settings.engine_probe_timeout_seconds,
    )


def create_app(settings: SidecarSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        policy = settings.source_policy()
        downloads = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(policy))
        )
        async with aiohttp.ClientSession() as http, downloads, tracing("hoist-sidecar") as traced:
            metrics = SidecarMetrics()
            store = _adapter_store(settings, downloads, policy)
            engine = EngineClient(
                settings.engine_url, http, timeout=settings.engine_timeout_seconds
            )
            tracer = traced.get_tracer("hoist.sidecar") if traced else None  # None: off
            manager = AdapterManager(settings, store, engine, metrics, spans=AdapterSpans(tracer))
            manager.restore()
            app.state.manager = manager
            app.state.metrics = metrics
            app.state.engine = engine
            liveness = _engine_liveness(settings, http, metrics)
            app.state.liveness = liveness
            poller = asyncio.create_task(manager.run(), name="sidecar-poll")
            prober = asyncio.create_task(liveness.run(), name="sidecar-engine-liveness")
            try:
                yield
            finally:
                log.info("draining")
                await manager.drain()
                for task in (poller, prober):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app = FastAPI(title="Hoist inference sidecar", lifespan=lifespan)

    @app.exception_handler(AdapterRefusedError)
    async def _refused(_: Request, exc: AdapterRefusedError) -> JSONResponse:
        return _error(exc.status, exc.reason, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, "InvalidRequest", f"{where}: {first.get('msg', 'invalid request')}")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(manager: ManagerDep) -> JSONResponse:
        if manager.draining:
            return _error(503, "Draining", "the sidecar is shutting down")
        if not manager.engine_healthy:
            return _error(503, "EngineNotReady", "the engine does not answer /health yet")
        return JSONResponse({"status": "ready"})

    @app.get("/livez/engine")
    async def livez_engine(liveness: LivenessDep) -> JSONResponse:
        """The engine container's liveness probe: fails only for an engine that answered
        and then went silent past the bound, never for one still starting."""
        verdict = liveness.verdict()
        body = {"state": verdict.state.value, "message": verdict.message}
        return JSONResponse(body, status_code=503 if verdict.restart else 200)

    @app.get("/adapters")
    async def list_adapters(manager: ManagerDep) -> dict[str, Any]:
        return {"items": [_report(r) for r in manager.reports().values()]}

    @app.get("/adapters/{name}")
    async def get_adapter(name: str, manager: ManagerDep) -> JSONResponse:
        found = manager.report_of(name)
        if found is None:
            return _error(404, "NotFound", f"no adapter named {name!r}")
        return JSONResponse(_report(found))

    @app.put("/adapters/{name}")
    async def put_adapter(
        name: str, body: PutAdapter, manager: ManagerDep, request: Request
    ) -> JSONResponse:
        with manager.spans.request(name, request.headers):  # the caller's trace, if traced
            status, item = await manager.put(
                name, body.source, body.sha256, body.tenant, credentials=body.secrets()
            )
        return JSONResponse(_report(item), status_code=status)

    @app.delete("/adapters/{name}")
    async def delete_adapter(name: str, manager: ManagerDep) -> JSONResponse:
        if not await manager.delete(name):
            return _error(404, "NotFound", f"no adapter named {name!r}")
        return JSONResponse({"name": name, "deleted": True})

    @app.get("/metrics")
    async def metrics(metrics: MetricsDep, engine: EngineDep) -> Response:
        text = await engine.metrics_text()
        return Response(metrics.render(text), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
