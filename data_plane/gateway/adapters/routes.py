"""The adapter API: `POST /v1/adapters`, `PUT|GET|DELETE /v1/adapters/{name}`, `GET /v1/adapters`.

The routes validate the request, resolve relative sources against MODEL_REPOSITORY, apply
the tenancy hooks (a tenant sees and changes only its own adapters) and call the store
(`store.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import PurePosixPath
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from control_plane.api import LoraAdapter
from data_plane.gateway.adapters.bodies import (
    AdapterBody,
    AdapterDeleted,
    AdapterDocumentBody,
    AdapterList,
    FlatAdapterBody,
    NamedAdapterBody,
    as_document,
    body_error,
)
from data_plane.gateway.adapters.store import AdapterStore, Document
from data_plane.gateway.dependencies import Auth, GatewayDep, StoreDep
from data_plane.gateway.errors import BadRequestError, ConflictError, NotFoundError
from data_plane.gateway.openapi.responses import Responses, answer, error_responses
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.service import Caller


class AdapterRoute(APIRoute):
    """A route whose malformed body is OpenAI's 400 naming the field as the document does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise body_error(exc.errors()) from None

        return route


adapters = APIRouter(prefix="/v1/adapters", route_class=AdapterRoute, tags=["adapters"])


def adapter_document(
    body: AdapterDocumentBody | FlatAdapterBody, name: str | None, gateway: Gateway, caller: Caller
) -> Document:
    """A valid LoraAdapter document from a document or the flat form `{name, baseModel, ...}`."""
    doc = as_document(body, name)
    if name is not None and doc["metadata"].get("name") != name:
        raise BadRequestError("The name in the body differs from the path's.", param="name")
    if caller.name is not None:  # tenancy hook: a tenant's adapters are its own
        doc["spec"] = {**doc["spec"], "tenant": caller.name}
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
        try:  # the resolved path is validated as the source (its length, say)
            spec_model.source = str(repo / source)
        except ValidationError:
            raise BadRequestError(
                "source: too long once resolved against the model repository", param="source"
            ) from None
    fleet = gateway.fleet
    base = fleet.models.get(spec_model.base_model)
    hidden = base is not None and not gateway.tenancy.may_see(
        caller, (spec_model.base_model, base.tenant)
    )
    if (fleet.discovered and base is None) or hidden:
        raise BadRequestError(
            f"Unknown base model `{spec_model.base_model}`.", param="spec.baseModel"
        )
    if adapter.metadata.name in fleet.models:  # a model id names one thing only
        raise ConflictError(
            f"The name `{adapter.metadata.name}` is taken by a model; choose another.",
            param="name",
        )
    document = adapter.model_dump(mode="json", by_alias=True, exclude_none=True)
    # The store places the adapter (on Kubernetes: the namespace in its URL); a namespace
    # from the type's default ("default") would make the API server refuse the create.
    if "namespace" not in doc["metadata"]:
        document["metadata"].pop("namespace", None)
    try:  # unknown metadata fields are kept as sent: a number past 64 bits cannot be stored
        orjson.dumps(document)
    except TypeError:
        raise BadRequestError("A number in `metadata` is out of range.", param="metadata") from None
    return document


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
    body: AdapterDocumentBody | FlatAdapterBody,
    name: str | None,
    gateway: Gateway,
    store: AdapterStore,
    caller: Caller,
) -> Response:
    document = adapter_document(body, name, gateway, caller)
    if caller.tenant is not None:  # tenancy hook: a tenant changes only its own adapters
        name = document["metadata"]["name"]
        try:
            existing = await store.get(name)
        except NotFoundError:
            existing = None
        if existing is not None and _owner(existing) != caller.name:
            raise NotFoundError(f"The adapter `{name}` does not exist.")
    await gateway.sources.check(document["spec"]["source"], caller.tenant, param="source")
    stored, created = await store.put(document)
    await gateway.refresh()
    return JSONResponse(stored, status_code=201 if created else 200)


_NAME = {"name": "$response.body#/metadata/name"}
_LINKS = {
    "links": {
        f"{op.title().replace('_', '')}": {"operationId": op, "parameters": _NAME}
        for op in ("get_adapter", "put_adapter", "delete_adapter")
    }
}
_SAVED: Responses = {
    200: {"model": LoraAdapter, "description": "Updated: the adapter, with its status."} | _LINKS,
    201: {"model": LoraAdapter, "description": "Created: the adapter, with its status."} | _LINKS,
}
_ONE = answer(LoraAdapter, "The adapter, with its status.")
_LIST = answer(AdapterList, "The adapters the caller may see.")
_DELETED = answer(AdapterDeleted, "The adapter is gone.")
# 404 also when the adapter API has no store (static discovery); 502: the store is unreachable.
_WRITE_ERRORS = error_responses(400, 401, 404, 409, 422, 502)
_READ_ERRORS = error_responses(401, 404, 502)


@adapters.post(
    "", operation_id="create_adapter", response_model=None, responses=_SAVED | _WRITE_ERRORS
)
async def create_adapter(
    body: Annotated[NamedAdapterBody, Body()], gateway: GatewayDep, store: StoreDep, caller: Auth
) -> Response:
    """Create or update an adapter (a LoraAdapter document or the flat form)."""
    return await _save(body, None, gateway, store, caller)


@adapters.put(
    "/{name}", operation_id="put_adapter", response_model=None, responses=_SAVED | _WRITE_ERRORS
)
async def put_adapter(
    name: str,
    body: Annotated[AdapterBody, Body()],
    gateway: GatewayDep,
    store: StoreDep,
    caller: Auth,
) -> Response:
    """Create or update the adapter `name`; a name in the body must be the same."""
    return await _save(body, name, gateway, store, caller)


@adapters.get("", operation_id="list_adapters", response_model=None, responses=_LIST | _READ_ERRORS)
async def list_adapters(gateway: GatewayDep, store: StoreDep, caller: Auth) -> dict[str, Any]:
    items = [d for d in await store.list() if _mine(d, gateway, caller)]
    return {"object": "list", "data": items}


@adapters.get(
    "/{name}", operation_id="get_adapter", response_model=None, responses=_ONE | _READ_ERRORS
)
async def get_adapter(name: str, gateway: GatewayDep, store: StoreDep, caller: Auth) -> Document:
    return await _owned(store, name, gateway, caller)


@adapters.delete(
    "/{name}", operation_id="delete_adapter", response_model=None, responses=_DELETED | _READ_ERRORS
)
async def delete_adapter(
    name: str, gateway: GatewayDep, store: StoreDep, caller: Auth
) -> dict[str, Any]:
    await _owned(store, name, gateway, caller)
    await store.delete(name)
    await gateway.refresh()
    return {"id": name, "object": "adapter", "deleted": True}
