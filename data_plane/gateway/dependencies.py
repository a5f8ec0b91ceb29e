"""FastAPI dependencies shared by the gateway's control routes (`app.py`, `adapters/routes.py`).

Each is a type alias to put in a route's signature: `GatewayDep` (the running gateway),
`Auth` (the authenticated caller, or 401), `StoreDep` (the adapter store, or 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from data_plane.gateway.adapters.store import AdapterStore
from data_plane.gateway.errors import NotFoundError
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tenancy.service import Caller


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
