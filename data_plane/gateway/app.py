"""The gateway's HTTP surface: FastAPI for the control routes, raw ASGI for the hot path.

`build_app` returns the ASGI callable uvicorn serves: the two proxy routes are dispatched
before FastAPI's routing and middleware (they cost per request), everything else is a
FastAPI route. Every error, from either side, has OpenAI's shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from typing import Annotated, Any

import aiohttp
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from control_plane.api import LoraAdapter
from data_plane.gateway.adapters import AdapterStore, Document
from data_plane.gateway.errors import (
    BadRequestError,
    GatewayError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NoReadyReplicaError,
    NotFoundError,
    UnauthorizedError,
    error_body,
    type_for_status,
)
from data_plane.gateway.proxy import ProxyEndpoint, Receive, Scope, Send
from data_plane.gateway.request_fields import Endpoint
from data_plane.gateway.runtime import Gateway

AdapterStoreFactory = Callable[[aiohttp.ClientSession], AdapterStore | None]


def error_response(exc: GatewayError) -> Response:
    return Response(
        exc.body(),
        status_code=exc.status,
        media_type="application/json",
        headers={k.decode(): v.decode() for k, v in exc.headers()},
    )


# --- dependencies ------------------------------------------------------------------------


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def authorized(request: Request, gateway: GatewayDep) -> None:
    keys = gateway.settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token not in keys:
        raise UnauthorizedError("Missing or invalid API key: send `Authorization: Bearer <key>`.")


def get_store(request: Request) -> AdapterStore:
    store: AdapterStore | None = request.app.state.adapter_store
    if store is None:
        raise NotFoundError("The adapter API is not available with static discovery.")
    return store


Auth = Annotated[None, Depends(authorized)]
StoreDep = Annotated[AdapterStore, Depends(get_store)]

# --- health, metrics, models -------------------------------------------------------------

control = APIRouter()


@control.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@control.get("/readyz")
async def readyz(gateway: GatewayDep) -> Response:
    if gateway.fleet.routable(asyncio.get_running_loop().time()):
        return JSONResponse({"status": "ready"})
    retry = gateway.settings.retry_after_s
    return error_response(NoReadyReplicaError("No replica is ready to serve.", retry_after_s=retry))


@control.get("/metrics")
async def metrics(gateway: GatewayDep) -> Response:
    return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def model_cards(gateway: Gateway) -> list[dict[str, Any]]:
    """Base models, then adapters (with `parent`), as vLLM lists them."""
    repo = gateway.settings.model_repository
    fleet = gateway.fleet
    cards = [_card(name, None, str(repo / name) if repo else name) for name in fleet.models]
    cards.extend(
        _card(a.name, a.base_model, a.name)
        for a in fleet.adapters.values()
        if a.base_model in fleet.models
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


@control.get("/v1/models")
async def list_models(gateway: GatewayDep, _: Auth) -> dict[str, Any]:
    return {"object": "list", "data": model_cards(gateway)}


@control.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, gateway: GatewayDep, _: Auth) -> dict[str, Any]:
    for card in model_cards(gateway):
        if card["id"] == model_id:
            return card
    raise ModelNotFoundError(model_id)


# --- adapters ----------------------------------------------------------------------------

adapters = APIRouter(prefix="/v1/adapters")


def adapter_document(payload: Any, name: str | None, gateway: Gateway) -> Document:
    """A valid LoraAdapter document from a document or the flat form `{name, baseModel, ...}`."""
    if not isinstance(payload, dict):
        raise BadRequestError("The body must be a JSON object.")
    if "spec" in payload:
        doc = dict(payload)
        meta = dict(doc.get("metadata") or {})
        if name is not None:
            meta.setdefault("name", name)
        doc["metadata"] = meta
    else:
        spec = dict(payload)
        doc = {"metadata": {"name": spec.pop("name", name)}, "spec": spec}
        if "base_model" in spec and "baseModel" not in spec:
            spec["baseModel"] = spec.pop("base_model")
    if name is not None and doc["metadata"].get("name") != name:
        raise BadRequestError("The name in the body differs from the path's.", param="name")
    doc.pop("status", None)
    doc.setdefault("apiVersion", "serving.hoist.dev/v1alpha1")
    doc.setdefault("kind", "LoraAdapter")
    try:
        adapter = LoraAdapter.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequestError(f"{loc}: {first['msg']}", param=loc or None) from None
    spec_model = adapter.spec
    repo = gateway.settings.model_repository
    source = spec_model.source
    if repo is not None and "://" not in source and not PurePosixPath(source).is_absolute():
        spec_model.source = str(repo / source)
    fleet = gateway.fleet
    if fleet.discovered and spec_model.base_model not in fleet.models:
        raise BadRequestError(
            f"Unknown base model `{spec_model.base_model}`.", param="spec.baseModel"
        )
    return adapter.model_dump(mode="json", by_alias=True, exclude_none=True)


async def _save(
    request: Request, name: str | None, gateway: Gateway, store: AdapterStore
) -> Response:
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}") from None
    stored, created = await store.put(adapter_document(payload, name, gateway))
    await gateway.refresh()
    return JSONResponse(stored, status_code=201 if created else 200)


@adapters.post("")
async def create_adapter(
    request: Request, gateway: GatewayDep, store: StoreDep, _: Auth
) -> Response:
    return await _save(request, None, gateway, store)


@adapters.put("/{name}")
async def put_adapter(
    name: str, request: Request, gateway: GatewayDep, store: StoreDep, _: Auth
) -> Response:
    return await _save(request, name, gateway, store)


@adapters.get("")
async def list_adapters(store: StoreDep, _: Auth) -> dict[str, Any]:
    return {"object": "list", "data": await store.list()}


@adapters.get("/{name}")
async def get_adapter(name: str, store: StoreDep, _: Auth) -> Document:
    return await store.get(name)


@adapters.delete("/{name}")
async def delete_adapter(
    name: str, gateway: GatewayDep, store: StoreDep, _: Auth
) -> dict[str, Any]:
    await store.delete(name)
    await gateway.refresh()
    return {"id": name, "object": "adapter", "deleted": True}


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(gateway: Gateway, adapter_store: AdapterStoreFactory) -> HotPaths:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        app.state.adapter_store = adapter_store(gateway.session)
        try:
            yield
        finally:
            await gateway.stop()

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
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    routes = {
        "/v1/chat/completions": ProxyEndpoint(gateway, Endpoint.CHAT, "/v1/chat/completions"),
        "/v1/completions": ProxyEndpoint(gateway, Endpoint.COMPLETIONS, "/v1/completions"),
    }
    return HotPaths(app, routes)
