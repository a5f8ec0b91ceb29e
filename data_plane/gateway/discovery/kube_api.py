"""The gateway's Kubernetes calls, through lightkube (docs/kubernetes-client.md).

One `KubeApi` per user (discovery, the adapter store, the Tenant source), built from the
gateway's settings: `--kube-api-url` with an optional token file and CA, or in-cluster
(the service account's token, re-read on each request so a rotated token is picked up).
Objects stay plain JSON dicts (lightkube's generic resources). Every failure is the one
`control_plane.api.kube_error.KubeError`; a watch's `ERROR` event with a 410 is
`KubeError(410)` (`gone`).

Watches ask for bookmarks (`allowWatchBookmarks=true`, which lightkube's `watch` has no
parameter for: the transport adds it to watch requests), so a quiet collection still
moves the resourceVersion a watch resumes from.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.client import LabelSelector
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from control_plane.api.constants import (
    GROUP,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
    TENANT_PLURAL,
    VERSION,
)
from control_plane.api.kube_error import KubeError
from data_plane.gateway.settings import GatewaySettings

Json = dict[str, Any]
_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Kind:
    """A namespaced kind the gateway reads; `resource()` is lightkube's generic class."""

    group: str
    version: str
    kind: str
    plural: str

    def resource(self) -> Any:
        api_version = f"{self.group}/{self.version}" if self.group else self.version
        known = resource_registry.get(api_version, self.kind)
        if known is not None:  # lightkube's own lookup misses core-group kinds ("/v1")
            return known
        return create_namespaced_resource(self.group, self.version, self.kind, self.plural)


PODS = Kind("", "v1", "Pod", "pods")
SECRETS = Kind("", "v1", "Secret", "secrets")
MODELS = Kind(GROUP, VERSION, "Model", MODEL_PLURAL)
LORA_ADAPTERS = Kind(GROUP, VERSION, "LoraAdapter", LORA_ADAPTER_PLURAL)
TENANTS = Kind(GROUP, VERSION, "Tenant", TENANT_PLURAL)


class _GatewayTransport(httpx2.AsyncBaseTransport):
    """Names the caller (User-Agent) and asks every watch for bookmarks."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, user_agent: str) -> None:
        self._inner = inner
        self._agent = user_agent

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["User-Agent"] = self._agent
        if request.url.params.get("watch") == "true":
            request.url = request.url.copy_set_param("allowWatchBookmarks", "true")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def kube_config(settings: GatewaySettings) -> SingleConfig:
    """Where the API is and how to log in, from the settings or the pod's service account."""
    server = settings.kube_api_url
    token, ca = settings.kube_token_file, settings.kube_ca_file
    if server is None:
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        if not host:
            raise ValueError("kubernetes discovery needs --kube-api-url outside a cluster")
        host = f"[{host}]" if ":" in host else host
        server = f"https://{host}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
        token, ca = token or _SA_DIR / "token", ca or _SA_DIR / "ca.crt"
    cluster: Json = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    user: Json = {"tokenFile": str(token)} if token is not None else {}
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "api", "cluster": cluster}],
            "users": [{"name": "gateway", "user": user}],
            "contexts": [
                {
                    "name": "gateway",
                    "context": {
                        "cluster": "api",
                        "user": "gateway",
                        "namespace": settings.kube_namespace,
                    },
                }
            ],
            "current-context": "gateway",
        }
    ).get()
    if config is None or config.user is None:
        raise ValueError("kube_config: no context")  # cannot happen: one is written above
    return config


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except ApiError as exc:
        if exc.response is not None:  # an HTTP answer; else a watch's ERROR event
            raise KubeError(exc.response.status_code, f"{what}: {_message(exc.response)}") from exc
        raise KubeError(int(exc.status.code or 0), f"{what}: {exc.status.message}") from exc
    except httpx2.HTTPStatusError as exc:
        raise KubeError(exc.response.status_code, f"{what}: {_message(exc.response)}") from exc
    except httpx2.HTTPError as exc:
        raise KubeError(0, f"{what}: the Kubernetes API is unreachable: {exc!r}") from exc
    except KeyError as exc:
        # lightkube reads an error's Content-Type unguarded; an answer without one ends
        # up as this KeyError, raised while handling the HTTPStatusError.
        cause = exc.__context__
        if not isinstance(cause, httpx2.HTTPStatusError):
            raise
        raise KubeError(cause.response.status_code, f"{what}: {_message(cause.response)}") from exc


def _message(response: httpx2.Response) -> str:
    try:
        doc = response.json()
    except (ValueError, httpx2.ResponseNotRead):
        return f"HTTP {response.status_code}"
    return str(doc.get("message", "")) if isinstance(doc, dict) else str(doc)[:300]


class KubeApi:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, settings: GatewaySettings, *, user_agent: str = "hoist-gateway") -> KubeApi:
        config = kube_config(settings)
        assert config.user is not None  # kube_config always writes one
        tls = verify_cluster(config.cluster, config.user, config.abs_file, trust_env=False)
        transport = _GatewayTransport(httpx2.AsyncHTTPTransport(verify=tls), user_agent)
        timeout = httpx2.Timeout(settings.kube_request_timeout_s)
        return cls(AsyncClient(config, timeout=timeout, trust_env=False, transport=transport))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def list(
        self, kind: Kind, namespace: str, *, labels: LabelSelector | None = None
    ) -> tuple[list[Json], str]:
        """The objects and the collection's resourceVersion (to watch from)."""
        with _mapped(f"list {kind.plural} in {namespace}"):
            listing = self._client.list(kind.resource(), namespace=namespace, labels=labels)
            items = [dict(item) async for item in listing]
            return items, listing.resourceVersion

    async def watch(
        self,
        kind: Kind,
        namespace: str,
        *,
        since: str,
        labels: LabelSelector | None = None,
        server_timeout_s: int | None = None,
    ) -> AsyncGenerator[tuple[str, Json], None]:
        """(type, object) events after `since`: ADDED, MODIFIED, DELETED and BOOKMARK.

        lightkube starts a new request from the last version when the server ends one."""
        stream = self._client.watch(
            kind.resource(),
            namespace=namespace,
            labels=labels,
            resource_version=since,
            server_timeout=server_timeout_s,
        )
        try:
            with _mapped(f"watch {kind.plural} in {namespace}"):
                async for event, obj in stream:
                    yield event, dict(obj)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def get(self, kind: Kind, namespace: str, name: str) -> Json:
        with _mapped(f"get {kind.plural}/{name} in {namespace}"):
            return dict(await self._client.get(kind.resource(), name, namespace=namespace))

    async def create(self, kind: Kind, namespace: str, body: Json) -> Json:
        doc = {**body, "metadata": {**(body.get("metadata") or {}), "namespace": namespace}}
        with _mapped(f"create {kind.plural} in {namespace}"):
            return dict(await self._client.create(kind.resource()(doc)))

    async def merge_patch(self, kind: Kind, namespace: str, name: str, body: Json) -> Json:
        with _mapped(f"patch {kind.plural}/{name} in {namespace}"):
            patched = await self._client.patch(
                kind.resource(), name, body, namespace=namespace, patch_type=PatchType.MERGE
            )
            return dict(patched)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        with _mapped(f"delete {kind.plural}/{name} in {namespace}"):
            await self._client.delete(kind.resource(), name, namespace=namespace)
