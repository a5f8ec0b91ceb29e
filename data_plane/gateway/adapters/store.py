"""The adapter API's stores: the embedded default's admin API, or LoraAdapter resources.

One narrow interface for both (`AdapterStore`); the routes in `routes.py` validate the
request, resolve relative sources against MODEL_REPOSITORY and call the store.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import orjson

from data_plane.gateway.errors import (
    BadRequestError,
    GatewayError,
    NotFoundError,
    UpstreamUnavailableError,
)

Document = dict[str, Any]


class AdapterStore(Protocol):
    async def list(self) -> list[Document]: ...

    async def get(self, name: str) -> Document:
        """The LoraAdapter with its status; NotFoundError when unknown."""
        ...

    async def put(self, document: Document) -> tuple[Document, bool]:
        """Create or update; the stored document and whether it was created."""
        ...

    async def delete(self, name: str) -> None:
        """NotFoundError when unknown."""
        ...


class LocalAdapterStore:
    """The embedded default: `GET/PUT/DELETE {admin}/v1/adapters[/{name}]`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        admin_url: str,
        timeout_s: float = 30,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._session = session
        self._auth = headers or {}
        self._base = admin_url.rstrip("/") + "/v1/adapters"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _call(
        self, method: str, path: str = "", body: Document | None = None
    ) -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else None
        headers = dict(self._auth)
        if data is not None:
            headers["content-type"] = "application/json"
        try:
            async with self._session.request(
                method, self._base + path, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailableError(f"The adapter store is unreachable: {exc!r}") from exc
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if status >= 400:
            raise _store_error(status, parsed)
        return status, parsed

    async def list(self) -> list[Document]:
        _, body = await self._call("GET")
        items = body.get("items") if isinstance(body, dict) else None
        return [i for i in items or [] if isinstance(i, dict)]

    async def get(self, name: str) -> Document:
        _, body = await self._call("GET", f"/{name}")
        return body if isinstance(body, dict) else {}

    async def put(self, document: Document) -> tuple[Document, bool]:
        status, body = await self._call("PUT", f"/{document['metadata']['name']}", document)
        return (body if isinstance(body, dict) else document), status == 201

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/{name}")


def _store_error(status: int, body: Any) -> GatewayError:
    message = f"the adapter store answered {status}"
    field = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = str(inner.get("message") or inner.get("detail") or message)
            field = inner.get("field") or inner.get("param")
        elif isinstance(inner, str):
            message = inner
    if status == 404:
        return NotFoundError(message)
    if status in (400, 409, 422):
        return BadRequestError(message, param=field if isinstance(field, str) else None)
    return UpstreamUnavailableError(message)
