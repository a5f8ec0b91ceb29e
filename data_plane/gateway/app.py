"""The gateway's HTTP surface: FastAPI for the control routes, raw ASGI for the hot path.

`build_app` returns the ASGI callable uvicorn serves: the two proxy routes are dispatched
before FastAPI's routing and middleware (they cost per request), everything else is a
FastAPI route. Every error, from either side, has OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import gc
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
    error_body,
    type_for_status,
)
from data_plane.gateway.proxy import ProxyEndpoint, Receive, Scope, Send
from data_plane.gateway.request_fields import Endpoint
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.service import Caller

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


def authorized(request: Request, gateway: GatewayDep) -> Caller:
    """The caller (tenancy hook): operator keys, tenant keys, or 401."""
    header = request.headers.get("authorization", "").encode("latin-1")
    return gateway.tenancy.authenticate(header)


def get_store(request: Request) -> AdapterStore:
    store: AdapterStore | None = request.app.state.adapter_store
    if store is None:
        raise NotFoundError("The adapter API is not available with static discovery.")
    return store


Auth = Annotated[Caller, Depends(authorized)]
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


@control.get("/v1/models")
async def list_models(gateway: GatewayDep, caller: Auth) -> dict[str, Any]:
    return {"object": "list", "data": model_cards(gateway, caller)}


@control.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, gateway: GatewayDep, caller: Auth) -> dict[str, Any]:
    for card in model_cards(gateway, caller):
        if card["id"] == model_id:
            return card
    raise ModelNotFoundError(model_id)


# --- adapters ----------------------------------------------------------------------------

adapters = APIRouter(prefix="/v1/adapters")


def adapter_document(payload: Any, name: str | None, gateway: Gateway, caller: Caller) -> Document:
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
    if caller.name is not None:  # tenancy hook: a tenant's adapters are its own
        doc["spec"] = {**(doc.get("spec") or {}), "tenant": caller.name}
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
    base = fleet.models.get(spec_model.base_model)
    hidden = base is not None and not gateway.tenancy.may_see(
        caller, (spec_model.base_model, base.tenant)
    )
    if (fleet.discovered and base is None) or hidden:
        raise BadRequestError(
            f"Unknown base model `{spec_model.base_model}`.", param="spec.baseModel"
        )
    out = adapter.model_dump(mode="json", by_alias=True, exclude_none=True)
    # The store places the adapter (on Kubernetes: the namespace in its URL); a namespace
    # from the type's default ("default") would make the API server refuse the create.
    if "namespace" not in (payload.get("metadata") or {}):
        out["metadata"].pop("namespace", None)
    return out


def _owner(doc: Document) -> str | None:
    spec = doc.get("spec")
    tenant = spec.get("tenant") if isinstance(spec, dict) else None
    return tenant if isinstance(tenant, str) else None


def _mine(doc: Document, gateway: Gateway, caller: Caller) -> bool:
    """An operator sees every adapter; a tenant its own and the shared ones it may use."""
    name = str((doc.get("metadata") or {}).get("name"))
    return gateway.tenancy.may_see(caller, (name, _owner(doc)))


async def _owned(store: AdapterStore, name: str, gateway: Gateway, caller: Caller) -> Document:
    """The adapter if the caller may see it; 404 (never 403) otherwise (tenancy hook)."""
    doc = await store.get(name)
    if not _mine(doc, gateway, caller):
        raise NotFoundError(f"The adapter `{name}` does not exist.")
    return doc


async def _save(
    request: Request, name: str | None, gateway: Gateway, store: AdapterStore, caller: Caller
) -> Response:
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}") from None
    document = adapter_document(payload, name, gateway, caller)
    if caller.tenant is not None:  # tenancy hook: a tenant changes only its own adapters
        name = document["metadata"]["name"]
        try:
            existing = await store.get(name)
        except NotFoundError:
            existing = None
        if existing is not None and _owner(existing) != caller.name:
            raise NotFoundError(f"The adapter `{name}` does not exist.")
    stored, created = await store.put(document)
    await gateway.refresh()
    return JSONResponse(stored, status_code=201 if created else 200)


@adapters.post("")
async def create_adapter(
    request: Request, gateway: GatewayDep, store: StoreDep, caller: Auth
) -> Response:
    return await _save(request, None, gateway, store, caller)


@adapters.put("/{name}")
async def put_adapter(
    name: str, request: Request, gateway: GatewayDep, store: StoreDep, caller: Auth
) -> Response:
    return await _save(request, name, gateway, store, caller)


@adapters.get("")
async def list_adapters(gateway: GatewayDep, store: StoreDep, caller: Auth) -> dict[str, Any]:
    items = [d for d in await store.list() if _mine(d, gateway, caller)]
    return {"object": "list", "data": items}


@adapters.get("/{name}")
async def get_adapter(name: str, gateway: GatewayDep, store: StoreDep, caller: Auth) -> Document:
    return await _owned(store, name, gateway, caller)


@adapters.delete("/{name}")
async def delete_adapter(
    name: str, gateway: GatewayDep, store: StoreDep, caller: Auth
) -> dict[str, Any]:
    await _owned(store, name, gateway, caller)
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
