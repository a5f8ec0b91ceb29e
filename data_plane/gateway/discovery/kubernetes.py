"""Kubernetes: replicas are the pods of each Model; adapters are LoraAdapter resources.

A small REST client on the gateway's pooled aiohttp session (no kubernetes client
library): list Models, their pods (label `serving.hoist.dev/model`) and LoraAdapters in
one namespace. A pod is routable when it runs, is Ready and is not terminating; the
adapters loaded on it come from its `serving.hoist.dev/loaded-adapters` annotation,
which the sidecar keeps current.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from control_plane.api.constants import (
    ANNOTATION_LOADED_ADAPTERS,
    API_VERSION,
    LABEL_MODEL,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
)
from data_plane.gateway.adapters import Document
from data_plane.gateway.discovery import DiscoveryError
from data_plane.gateway.discovery.state import adapter_info
from data_plane.gateway.errors import (
    BadRequestError,
    GatewayError,
    NotFoundError,
    UpstreamUnavailableError,
)
from data_plane.gateway.fleet import FleetSnapshot, ModelInfo, ReplicaInfo
from data_plane.gateway.settings import GatewaySettings

_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

log = logging.getLogger("hoist.gateway.discovery")


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class KubeClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token_file: Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 10,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._token_file = token_file
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"accept": "application/json"}
        if self._token_file is not None and self._token_file.exists():
            headers["authorization"] = f"Bearer {self._token_file.read_text().strip()}"
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["content-type"] = content_type
        try:
            async with self._session.request(
                method,
                self._base + path,
                data=data,
                headers=headers,
                params=params,
                timeout=self._timeout,
                ssl=self._ssl if self._ssl is not None else True,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, f"the Kubernetes API is unreachable: {exc!r}") from exc
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if status >= 400:
            message = parsed.get("message") if isinstance(parsed, dict) else None
            raise KubeError(status, str(message or raw[:300].decode("utf-8", "replace")))
        return parsed


def kube_client(session: aiohttp.ClientSession, settings: GatewaySettings) -> KubeClient:
    base = settings.kube_api_url
    token = settings.kube_token_file
    ca = settings.kube_ca_file
    if base is None:
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ValueError("kubernetes discovery needs --kube-api-url outside a cluster")
        base = f"https://{host}:{port}"
        token = token or _SA_DIR / "token"
        ca = ca or _SA_DIR / "ca.crt"
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    return KubeClient(session, base, token, context)


def _custom(namespace: str, plural: str) -> str:
    return f"/apis/{API_VERSION}/namespaces/{namespace}/{plural}"


def loaded_adapters(annotation: str | None) -> frozenset[str]:
    """The annotation's adapters: a JSON list or a comma-separated string."""
    if not annotation:
        return frozenset()
    text = annotation.strip()
    if text.startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            return frozenset()
        return frozenset(
            i if isinstance(i, str) else str(i.get("name"))
            for i in items
            if isinstance(i, str) or (isinstance(i, dict) and i.get("name"))
        )
    return frozenset(a.strip() for a in text.split(",") if a.strip())


def pod_replica(pod: dict[str, Any], engine_port: int) -> ReplicaInfo | None:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if not ip:
        return None
    ready = (
        status.get("phase") == "Running"
        and not meta.get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
    )
    port = engine_port
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") in ("http", "engine") and isinstance(p.get("containerPort"), int):
                port = p["containerPort"]
    host = f"[{ip}]" if ":" in ip else ip
    return ReplicaInfo(
        name=str(meta.get("name")),
        url=f"http://{host}:{port}",
        ready=ready,
        adapters=loaded_adapters((meta.get("annotations") or {}).get(ANNOTATION_LOADED_ADAPTERS)),
    )


def fleet_from_resources(
    models: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    adapters: list[dict[str, Any]],
    engine_port: int,
) -> FleetSnapshot:
    by_model: dict[str, list[ReplicaInfo]] = {}
    for pod in pods:
        model = ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_MODEL)
        replica = pod_replica(pod, engine_port)
        if model and replica is not None:
            by_model.setdefault(model, []).append(replica)
    infos = []
    for m in models:
        name = (m.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            continue
        spec = m.get("spec") or {}
        lora = spec.get("lora") or {}
        max_loras = lora.get("maxLoras", 4)
        infos.append(
            ModelInfo(
                name=name,
                replicas=tuple(sorted(by_model.get(name, []), key=lambda r: r.name)),
                policy=str(spec.get("routingPolicy") or "default"),
                max_loras=max_loras if isinstance(max_loras, int) and max_loras > 0 else 4,
                tenant=spec.get("tenant") if isinstance(spec.get("tenant"), str) else None,
            )
        )
    found = (adapter_info(a) for a in adapters)
    return FleetSnapshot(models=tuple(infos), adapters=tuple(a for a in found if a is not None))


class KubernetesDiscovery:
    """Models, their pods and LoraAdapters from one or more namespaces, as one fleet.

    The first namespace is the gateway's own; the others hold dedicated Models (a tenant's
    namespace with its GPU quota). A model id is global to the OpenAI API: a Model or
    LoraAdapter whose name an earlier namespace (or an earlier kind) already serves is left
    out, and logged once.
    """

    def __init__(
        self, client: KubeClient, namespaces: str | tuple[str, ...], engine_port: int
    ) -> None:
        self._client = client
        self._namespaces = (namespaces,) if isinstance(namespaces, str) else namespaces
        self._engine_port = engine_port
        self._reported: set[tuple[str, str]] = set()

    async def fetch(self) -> FleetSnapshot:
        models: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        adapters: list[dict[str, Any]] = []
        taken: set[str] = set()
        for ns in self._namespaces:
            try:
                listed = await self._client.request("GET", _custom(ns, MODEL_PLURAL))
                ns_pods = await self._client.request(
                    "GET", f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": LABEL_MODEL}
                )
                ns_adapters = await self._client.request("GET", _custom(ns, LORA_ADAPTER_PLURAL))
            except KubeError as exc:
                raise DiscoveryError(f"namespace {ns}: {exc}") from exc
            served = self._claim(ns, _items(listed), taken)
            models += served
            names = {_name(m) for m in served}
            pods += [p for p in _items(ns_pods) if _model_label(p) in names]
            adapters += self._claim(ns, _items(ns_adapters), taken)
        return fleet_from_resources(models, pods, adapters, self._engine_port)

    def _claim(
        self, namespace: str, items: list[dict[str, Any]], taken: set[str]
    ) -> list[dict[str, Any]]:
        """The resources whose names are still free (claiming them); the rest logged once."""
        claimed = []
        for item in items:
            name = _name(item)
            if name in taken:
                if (namespace, name) not in self._reported:
                    self._reported.add((namespace, name))
                    log.warning(
                        "%s in namespace %s is not served: the name is taken", name, namespace
                    )
                continue
            taken.add(name)
            claimed.append(item)
        return claimed


def _name(resource: dict[str, Any]) -> str:
    return str((resource.get("metadata") or {}).get("name"))


def _model_label(pod: dict[str, Any]) -> Any:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_MODEL)


def _items(listing: Any) -> list[dict[str, Any]]:
    items = listing.get("items") if isinstance(listing, dict) else None
    return [i for i in items or [] if isinstance(i, dict)]


class KubernetesAdapterStore:
    """The adapter API on Kubernetes: LoraAdapter resources in one namespace."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self._client = client
        self._path = _custom(namespace, LORA_ADAPTER_PLURAL)

    async def _call(
        self, method: str, path: str = "", body: Any = None, content_type: str = "application/json"
    ) -> Any:
        try:
            return await self._client.request(
                method, self._path + path, body, content_type=content_type
            )
        except KubeError as exc:
            raise _store_error(exc) from exc

    async def list(self) -> list[Document]:
        return _items(await self._call("GET"))

    async def get(self, name: str) -> Document:
        found = await self._call("GET", f"/{name}")
        return found if isinstance(found, dict) else {}

    async def put(self, document: Document) -> tuple[Document, bool]:
        name = document["metadata"]["name"]
        try:
            existing = await self._client.request("GET", f"{self._path}/{name}")
        except KubeError as exc:
            if exc.status != 404:
                raise _store_error(exc) from exc
            existing = None
        if existing is None:
            created = await self._call("POST", "", document)
            return (created if isinstance(created, dict) else document), True
        patch = {"spec": document["spec"]}
        updated = await self._call("PATCH", f"/{name}", patch, "application/merge-patch+json")
        return (updated if isinstance(updated, dict) else document), False

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/{name}")


def _store_error(exc: KubeError) -> GatewayError:
    if exc.status == 404:
        return NotFoundError(f"No such adapter: {exc.message}")
    if exc.status in (400, 409, 422):
        return BadRequestError(exc.message)
    return UpstreamUnavailableError(f"The Kubernetes API failed: {exc.message}")
