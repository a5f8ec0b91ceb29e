"""The gateway's HTTP surface: FastAPI for the control routes, the proxy for the hot path.

`build_app` returns the ASGI callable uvicorn serves. The four proxy routes are served by
the gateway's protocol without ASGI (`HotPaths.proxy_handlers`, http_protocol.py); reached
over ASGI they are dispatched before FastAPI's routing and middleware (they cost per
request). Everything else is a FastAPI route. Every error, from either side, has OpenAI's
shape.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from data_plane.gateway.adapters.routes import adapters
from data_plane.gateway.adapters.store import AdapterStore
from data_plane.gateway.dependencies import Auth, GatewayDep
from data_plane.gateway.errors import (
    BadRequestError,
    GatewayError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NoReadyReplicaError,
    NotFoundError,
    error_body,
    type_for_status,
)
from data_plane.gateway.openapi.document import install_openapi
from data_plane.gateway.openapi.openai_bodies import ModelCard, ModelList, Status
from data_plane.gateway.openapi.responses import Responses, answer, error_responses
from data_plane.gateway.proxy import ProxyEndpoint, Receive, Scope, Send
from data_plane.gateway.proxy.cycle import Handler
from data_plane.gateway.request_fields import Endpoint
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.stored_responses import stored_responses
from data_plane.gateway.tenancy.errors import PermissionDeniedError
from data_plane.gateway.tenancy.keys import presented
from data_plane.gateway.tenancy.service import Caller

AdapterStoreFactory = Callable[[aiohttp.ClientSession], AdapterStore | None]


def error_response(exc: GatewayError) -> Response:
    return Response(
        exc.body(),
        status_code=exc.status,
        media_type="application/json",
        headers={k.decode(): v.decode() for k, v in exc.headers()},
    )


# --- health, metrics, models -------------------------------------------------------------

control = APIRouter()
_PROMETHEUS = {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}
_METRICS_RESPONSES: Responses = {
    200: {"description": "Prometheus' text format.", "content": _PROMETHEUS},
    **error_responses(401, 403),
}


@control.get(
    "/healthz", operation_id="healthz", response_model=None, responses=answer(Status, "Alive.")
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@control.get(
    "/readyz",
    operation_id="readyz",
    response_model=None,
    responses=answer(Status, "Ready: some replica can serve.") | error_responses(503),
)
async def readyz(gateway: GatewayDep) -> Response:
    retry = gateway.settings.retry_after_s
    if gateway.draining:  # SIGTERM: leave the load balancer's endpoints first (drain.py)
        draining = NoReadyReplicaError(
            "The gateway is shutting down.", code="draining", retry_after_s=retry
        )
        return error_response(draining)
    if gateway.fleet.routable(asyncio.get_running_loop().time()):
        return JSONResponse({"status": "ready"})
    return error_response(NoReadyReplicaError("No replica is ready to serve.", retry_after_s=retry))


@control.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses=_METRICS_RESPONSES,
)
async def metrics(request: Request, gateway: GatewayDep) -> Response:
    """Operators only while keys are on: the series name every model and tenant."""
    header = request.headers.get("authorization", "")
    token = gateway.metrics_token
    if gateway.tenancy.enabled and not (token and presented(header, token)):
        caller = gateway.tenancy.authenticate(header.encode("latin-1"))
        if caller.tenant is not None:
            raise PermissionDeniedError("The metrics are for operators: use an operator key.")
    return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def model_cards(gateway: Gateway, caller: Caller) -> list[dict[str, Any]]:
    """Base models, then adapters (with `parent`), as vLLM lists them: those the caller
    may use (tenancy hook)."""
    repo = gateway.settings.model_repository
    fleet = gateway.fleet
    may = gateway.tenancy.may_see
    cards = [
        _card(name, None, str(repo / name) if repo else name)
        for name, route in fleet.models.items()
        if may(caller, (name, route.tenant))
    ]
    cards.extend(
        _card(a.name, a.base_model, a.name)
        for a in fleet.adapters.values()
        if a.base_model in fleet.models
        and may(caller, (a.name, a.tenant), (a.base_model, fleet.models[a.base_model].tenant))
    )
    return cards


def _card(model_id: str, parent: str | None, root: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "hoist",
        "root": root,
        "parent": parent,
    }


@control.get(
    "/v1/models",
    operation_id="list_models",
    response_model=None,
    responses=answer(ModelList, "The models the caller may use.") | error_responses(401),
)
async def list_models(gateway: GatewayDep, caller: Auth) -> dict[str, Any]:
    return {"object": "list", "data": model_cards(gateway, caller)}


@control.get(
    "/v1/models/{model_id:path}",
    operation_id="get_model",
    response_model=None,
    responses=answer(ModelCard, "The model.") | error_responses(401, 404),
)
async def get_model(model_id: str, gateway: GatewayDep, caller: Auth) -> dict[str, Any]:
    for card in model_cards(gateway, caller):
        if card["id"] == model_id:
            return card
    raise ModelNotFoundError(model_id)


# --- errors ------------------------------------------------------------------------------


async def _gateway_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(NotFoundError("Not found: see the OpenAI API (/v1/...)."))
    if exc.status_code == 405:
        return error_response(MethodNotAllowedError("Method not allowed on this path."))
    return Response(
        error_body(str(exc.detail), type_for_status(exc.status_code)),
        status_code=exc.status_code,
        media_type="application/json",
    )


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = f"{loc}: {first.get('msg', 'invalid request')}"
    return error_response(BadRequestError(message, param=loc or None))


# --- the app -----------------------------------------------------------------------------


class HotPaths:
    """Dispatch the proxy routes straight to their ASGI apps; the rest goes to FastAPI."""

    def __init__(self, app: FastAPI, routes: dict[str, ProxyEndpoint]) -> None:
        self.app = app
        self.routes = routes

    def proxy_handlers(self) -> dict[bytes, Handler]:
        """The proxy routes for the gateway's HTTP protocol, which serves them without ASGI
        (`http_protocol.gateway_protocol`)."""
        return {path.encode(): endpoint.serve for path, endpoint in self.routes.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(
    gateway: Gateway, adapter_store: AdapterStoreFactory, *, freeze_after_start: bool = False
) -> HotPaths:
    """The ASGI app; `freeze_after_start` is for a process that serves only this gateway."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        app.state.adapter_store = adapter_store(gateway.session)
        if freeze_after_start:
            # What start-up built lives as long as the process: out of the collector's view,
            # a full collection mid-traffic scans only what requests allocate (40-80 ms
            # each otherwise, measured with 512 streams in flight).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await gateway.stop()
            close = getattr(app.state.adapter_store, "aclose", None)
            if close is not None:  # a store with a client of its own (Kubernetes)
                await close()

    app = FastAPI(
        title="Hoist gateway",
        summary="OpenAI-compatible API in front of Hoist's engines",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.state.adapter_store = None
    app.include_router(control)
    app.include_router(adapters)
    app.include_router(stored_responses)
    install_openapi(app)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    routes = {
        "/v1/chat/completions": ProxyEndpoint(gateway, Endpoint.CHAT, "/v1/chat/completions"),
        "/v1/completions": ProxyEndpoint(gateway, Endpoint.COMPLETIONS, "/v1/completions"),
        "/v1/responses": ProxyEndpoint(gateway, Endpoint.RESPONSES, "/v1/responses"),
        "/v1/embeddings": ProxyEndpoint(gateway, Endpoint.EMBEDDINGS, "/v1/embeddings"),
    }
    return HotPaths(app, routes)
