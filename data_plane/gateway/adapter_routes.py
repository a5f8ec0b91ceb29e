"""The adapter API: `POST /v1/adapters`, `PUT|GET|DELETE /v1/adapters/{name}`, `GET /v1/adapters`.

The routes validate the request, resolve relative sources against MODEL_REPOSITORY, apply
the tenancy hooks (a tenant sees and changes only its own adapters) and call the store
(`adapters.py`).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from control_plane.api import LoraAdapter
from data_plane.gateway.adapters import AdapterStore, Document
from data_plane.gateway.dependencies import Auth, GatewayDep, StoreDep
from data_plane.gateway.errors import BadRequestError, NotFoundError
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.service import Caller

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
    return adapter.model_dump(mode="json", by_alias=True, exclude_none=True)


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
