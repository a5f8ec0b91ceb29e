"""The adapter API on Kubernetes: LoraAdapter resources in one namespace (via `KubeApi`)."""

from __future__ import annotations

from control_plane.api.kube_error import KubeError
from data_plane.gateway.adapters.store import Document
from data_plane.gateway.discovery.kube_api import LORA_ADAPTERS, KubeApi
from data_plane.gateway.errors import (
    BadRequestError,
    GatewayError,
    NotFoundError,
    UpstreamUnavailableError,
)


class KubernetesAdapterStore:
    def __init__(self, api: KubeApi, namespace: str) -> None:
        self._api = api
        self._namespace = namespace

    async def aclose(self) -> None:
        await self._api.aclose()

    async def list(self) -> list[Document]:
        try:
            items, _ = await self._api.list(LORA_ADAPTERS, self._namespace)
        except KubeError as exc:
            raise _store_error(exc) from exc
        return items

    async def get(self, name: str) -> Document:
        try:
            return await self._api.get(LORA_ADAPTERS, self._namespace, name)
        except KubeError as exc:
            raise _store_error(exc) from exc

    async def put(self, document: Document) -> tuple[Document, bool]:
        name = document["metadata"]["name"]
        try:
            try:
                await self._api.get(LORA_ADAPTERS, self._namespace, name)
            except KubeError as exc:
                if not exc.not_found:
                    raise
                return await self._api.create(LORA_ADAPTERS, self._namespace, document), True
            patch = {"spec": document["spec"]}
            patched = await self._api.merge_patch(LORA_ADAPTERS, self._namespace, name, patch)
            return patched, False
        except KubeError as exc:
            raise _store_error(exc) from exc

    async def delete(self, name: str) -> None:
        try:
            await self._api.delete(LORA_ADAPTERS, self._namespace, name)
        except KubeError as exc:
            raise _store_error(exc) from exc


def _store_error(exc: KubeError) -> GatewayError:
    if exc.not_found:
        return NotFoundError(f"No such adapter: {exc.message}")
    if exc.status in (400, 409, 422):
        return BadRequestError(exc.message)
    return UpstreamUnavailableError(f"The Kubernetes API failed: {exc.message}")
