"""A Kubernetes API for tests: kmock's emulator plus what kopf and kubectl need of it.

kmock's `KubernetesEmulator` stores objects and serves list/watch/get/create/patch/delete.
This subclass adds what a real API server does and kopf or kubectl rely on:
- `metadata.uid`, `resourceVersion`, `generation` (bumped on spec changes) and
  `creationTimestamp` (kopf's finalizer JSON-patches test `resourceVersion`);
- 422 when a JSON-patch `test` fails (kopf then retries on its next cycle);
- list `kind`/`apiVersion` and `labelSelector` filtering;
- server-side printing: `kubectl get` asks for a `Table`, rendered from the CRD's
  `additionalPrinterColumns` (so a test sees exactly what a user would).
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import yaml
from kmock._internal import dicts, enums, rendering
from kmock._internal.k8s import KubernetesError

from control_plane.api.crd import lora_adapter_crd, model_crd, tenant_crd


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _jsonpath(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, sep, value = term.partition("=")
        if not sep:
            if key not in labels:
                return False
        elif labels.get(key) != value.lstrip("="):
            return False
    return True


class HoistKubeEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with metadata, conflicts, typed lists and printer columns."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._versions = itertools.count(1)
        self._columns: dict[str, list[dict[str, Any]]] = {}
        self._kinds: dict[str, str] = {}

    def declare_crd(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        version = spec["versions"][0]
        key = f"{spec['group']}/{version['name']}/{spec['names']['plural']}"
        self.resources[key] = kmock.ResourceInfo(
            kind=spec["names"]["kind"],
            singular=spec["names"]["singular"],
            namespaced=spec["scope"] == "Namespaced",
            shortnames=set(spec["names"].get("shortNames", [])),
            categories=set(spec["names"].get("categories", [])),
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            subresources=set(version.get("subresources", {})),
        )
        self._columns[key] = version.get("additionalPrinterColumns", [])
        self._kinds[key] = spec["names"]["kind"]

    def declare(self, key: str, kind: str, *, namespaced: bool = True) -> None:
        self.resources[key] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=namespaced,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            subresources={"status"} if key.endswith(("pods", "deployments")) else set(),
        )
        self._kinds[key] = kind

    def _key(self, request: rendering.Request) -> str:
        res = request.resource
        assert res is not None
        return f"{res.group}/{res.version}/{res.plural}" if res.group else f"v1/{res.plural}"

    def _stored(self, request: rendering.Request) -> dict[str, Any] | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    async def _handle(self, request: rendering.Request) -> Any:
        if request.resource is not None and request.action is enums.action.CREATE:
            meta = request.data.setdefault("metadata", {})
            if request.namespace and not meta.get("namespace"):
                meta["namespace"] = request.namespace
            meta.update(
                uid=str(uuid.uuid4()),
                resourceVersion=str(next(self._versions)),
                generation=1,
                creationTimestamp=_now(),
            )
        elif request.resource is not None and request.action is enums.action.UPDATE:
            current = self._stored(request)
            if current is not None:
                self._stamp_update(request, current)
        return await super()._handle(request)

    def _stamp_update(self, request: rendering.Request, current: dict[str, Any]) -> None:
        try:
            after = dicts.patch_dict(current, request.data)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        version = str(next(self._versions))
        generation = current.get("metadata", {}).get("generation", 1)
        if request.subresource != "status" and after.get("spec") != current.get("spec"):
            generation += 1
        if isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            meta["resourceVersion"] = version
            meta["generation"] = generation
        elif isinstance(request.data, list):
            request.data.append(
                {"op": "add", "path": "/metadata/resourceVersion", "value": version}
            )
            request.data.append({"op": "add", "path": "/metadata/generation", "value": generation})

    async def _serve_list(self, request: rendering.Request) -> Any:
        doc = await super()._serve_list(request)
        assert isinstance(doc, dict)
        selector = request.params.get("labelSelector")
        if selector:
            doc["items"] = [
                i
                for i in doc["items"]
                if _matches(i.get("metadata", {}).get("labels", {}), selector)
            ]
        key = self._key(request)
        kind = self._kinds.get(key, "")
        res = request.resource
        assert res is not None
        api_version = f"{res.group}/{res.version}" if res.group else res.version
        for item in doc["items"]:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        doc["kind"] = f"{kind}List"
        doc["apiVersion"] = api_version
        doc["metadata"] = {"resourceVersion": str(next(self._versions))}
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table(key, doc["items"])
        return doc

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        doc = await super()._serve_fetch(request)
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table(self._key(request), [doc])
        return doc

    def _table(self, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        columns = list(self._columns.get(key, []))
        if not columns:
            columns = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        definitions = [
            {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
        ]
        definitions += [
            {
                "name": c["name"],
                "type": c["type"],
                "format": "",
                "description": "",
                "priority": c.get("priority", 0),
            }
            for c in columns
        ]
        rows = []
        for item in items:
            cells: list[Any] = [item["metadata"]["name"]]
            for column in columns:
                value = _jsonpath(item, column["jsonPath"])
                cells.append(_age(value) if column["type"] == "date" else value)
            rows.append(
                {
                    "cells": cells,
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": item["metadata"],
                    },
                }
            )
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(next(self._versions))},
            "columnDefinitions": definitions,
            "rows": rows,
        }


def hoist_emulator() -> HoistKubeEmulator:
    """An emulator serving Hoist's CRDs, the built-in kinds the operators touch, and kopf's
    peering resources."""
    emulator = HoistKubeEmulator()
    emulator.declare_crd(model_crd())
    emulator.declare_crd(lora_adapter_crd())
    emulator.declare_crd(tenant_crd())
    emulator.declare("v1/pods", "Pod")
    emulator.declare("v1/services", "Service")
    emulator.declare("v1/secrets", "Secret")
    emulator.declare("v1/events", "Event")
    emulator.declare("v1/namespaces", "Namespace", namespaced=False)
    emulator.declare("apps/v1/deployments", "Deployment")
    emulator.declare("kopf.dev/v1/kopfpeerings", "KopfPeering")
    emulator.declare("kopf.dev/v1/clusterkopfpeerings", "ClusterKopfPeering", namespaced=False)
    return emulator


@asynccontextmanager
async def running_emulator() -> AsyncIterator[tuple[HoistKubeEmulator, str]]:
    """The emulator listening on 127.0.0.1 (ephemeral port), and its URL."""
    async with hoist_emulator() as emulator, kmock.Server(emulator) as server:
        yield emulator, str(server.url).rstrip("/")


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "test"}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "tester", "namespace": "default"},
            }
        ],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


OPERATOR_AGENTS = ("kopf/", "hoist-operator")


def operator_calls(emulator: HoistKubeEmulator) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of every call the operator made."""
    calls: set[tuple[str, str, str]] = set()
    for request in list(emulator):
        agent = request.headers.get("User-Agent", "")
        if not agent.startswith(OPERATOR_AGENTS) or request.resource is None:
            continue
        res = request.resource
        if not res.plural:
            continue  # API discovery: open to every authenticated client
        plural = f"{res.plural}/{request.subresource}" if request.subresource else str(res.plural)
        method = str(
            request.method.value if hasattr(request.method, "value") else request.method
        ).upper()
        if method == "GET":
            verb = (
                "get"
                if request.name
                else ("watch" if request.params.get("watch") in ("true", "1") else "list")
            )
        else:
            verb = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]
        calls.add((res.group or "", plural, verb))
    return calls


def granted(rbac_docs: list[dict[str, Any]], names: set[str]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) granted by the (Cluster)Roles named `names`."""
    out: set[tuple[str, str, str]] = set()
    for doc in rbac_docs:
        if doc["kind"] not in ("Role", "ClusterRole") or doc["metadata"]["name"] not in names:
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((group, resource, verb))
    return out
