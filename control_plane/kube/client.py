"""The operators' own Kubernetes client: one `KubeClient` over lightkube, one `KubeError`.

kopf watches and dispatches; the handlers read and write other objects (Deployments,
Services, pods, statuses) through this thin shell, built from the same
`kopf.ConnectionInfo` the operator logs in with. Objects stay plain JSON dicts (lightkube's
generic resources): the managers render and validate them with `control_plane.api`.

An object is addressed by a `Ref` (kind, namespace, name, status subresource or not);
`core_ref`, `apps_ref`, `hoist_ref` and `cluster_ref` build them.

Errors: one `KubeError` for every failed call. `status` is the HTTP status (0: no answer);
`not_found` (404), `conflict` (409) and `temporary` (no answer, 429, 5xx) say what it means.
`get` answers `None` for 404; `apply` turns a 409 on create into a merge-patch.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import kopf
from lightkube import AsyncClient
from lightkube.config.client_adapter import verify_cluster
from lightkube.core.client import LabelSelector
from lightkube.types import PatchType

from control_plane.api.kube_error import KubeError
from control_plane.kube.config import Identified, kubeconfig_from
from control_plane.kube.refs import Ref, parse_selector

Json = dict[str, Any]


@contextlib.asynccontextmanager
async def _calling(what: str) -> AsyncIterator[None]:
    try:
        yield
    except httpx2.HTTPStatusError as exc:
        raise KubeError(exc.response.status_code, f"{what}: {_message(exc.response)}") from exc
    except httpx2.HTTPError as exc:
        raise KubeError(0, f"{what}: {exc or type(exc).__name__}") from exc
    except KeyError as exc:
        # lightkube reads the error's Content-Type header unguarded; an answer without
        # one surfaces as this KeyError, raised while handling the HTTPStatusError.
        cause = exc.__context__
        if not isinstance(cause, httpx2.HTTPStatusError):
            raise
        raise KubeError(cause.response.status_code, f"{what}: {_message(cause.response)}") from exc


def _message(response: httpx2.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:300]
    return str(doc.get("message", "")) if isinstance(doc, dict) else str(doc)[:300]


class KubeClient:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @classmethod
    def connect(
        cls,
        info: kopf.ConnectionInfo,
        *,
        timeout_seconds: float = 30.0,
        field_manager: str = "hoist-operator",
    ) -> KubeClient:
        """A client for the cluster kopf logs in to; close it with `aclose`.

        `field_manager` names the writer in `managedFields` and is the User-Agent."""
        config = kubeconfig_from(info)
        assert config.user is not None  # kubeconfig_from always writes one
        tls = verify_cluster(config.cluster, config.user, config.abs_file, trust_env=False)
        transport = Identified(httpx2.AsyncHTTPTransport(verify=tls), field_manager)
        return cls(
            AsyncClient(
                config,
                timeout=httpx2.Timeout(timeout_seconds),
                field_manager=field_manager,
                trust_env=False,
                transport=transport,
            )
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def get(self, ref: Ref) -> Json | None:
        resource = _resource(ref)
        try:
            async with _calling(f"GET {ref}"):
                found = await self._client.get(resource, _name(ref), namespace=ref.namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return _json(found)

    async def list(self, ref: Ref, *, label_selector: str | None = None) -> list[Json]:
        labels: LabelSelector | None = None
        if label_selector:
            labels = dict(parse_selector(label_selector))
        async with _calling(f"LIST {ref}"):
            listing = self._client.list(ref.kind.resource(), namespace=ref.namespace, labels=labels)
            return [_json(item) async for item in listing]

    async def create(self, ref: Ref, body: Json) -> Json:
        doc = dict(body)
        if ref.namespace:  # lightkube takes the namespace from the object
            doc["metadata"] = {**(body.get("metadata") or {}), "namespace": ref.namespace}
        async with _calling(f"POST {ref}"):
            return _json(await self._client.create(ref.kind.resource()(doc)))

    async def delete(self, ref: Ref) -> None:
        async with _calling(f"DELETE {ref}"):
            await self._client.delete(ref.kind.resource(), _name(ref), namespace=ref.namespace)

    async def merge_patch(self, ref: Ref, body: Json) -> Json:
        resource = _resource(ref)
        async with _calling(f"PATCH {ref}"):
            patched = await self._client.patch(
                resource, _name(ref), body, namespace=ref.namespace, patch_type=PatchType.MERGE
            )
        return _json(patched)

    async def apply(self, collection: Ref, body: Json) -> Json:
        """Create `body` in `collection`, or merge-patch the existing object into it."""
        try:
            return await self.create(collection, body)
        except KubeError as exc:
            if not exc.conflict:
                raise
            return await self.merge_patch(collection.named(body["metadata"]["name"]), body)


def _resource(ref: Ref) -> Any:
    resource = ref.kind.resource()
    return resource.Status if ref.status else resource


def _name(ref: Ref) -> str:
    if not ref.name:
        raise ValueError(f"{ref} names no object")
    return ref.name


def _json(obj: Any) -> Json:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)
