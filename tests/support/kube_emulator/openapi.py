"""`/openapi/v3`: the API's schemas and operations, built from what the emulator serves.

https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-v3: `/openapi/v3` lists
one document per group-version (`serverRelativeURL`), each an OpenAPI 3.0 document whose
schemas carry `x-kubernetes-group-version-kind`. kubectl reads them for `kubectl explain`,
for patch calculation, and to learn that the server validates fields itself: a PATCH
operation with a `fieldValidation` query parameter makes kubectl send
`fieldValidation=Strict` (its default `--validate=strict`) instead of validating client-side
(https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation).

Custom resources get their CRD's schema (with `metadata` as ObjectMeta, as the API server
publishes it); built-in kinds get an open object schema: the emulator does not validate them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "how the server treats unknown or duplicate fields: Ignore, Warn or Strict",
    "schema": {"type": "string", "uniqueItems": True},
}
_QUERY = [
    {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for n in ("dryRun", "fieldManager", "pretty")
]
_CUSTOM_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_META_SCHEMA = {
    "type": "object",
    "description": "Standard object's metadata.",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "managedFields": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}


@dataclass(frozen=True)
class Served:
    """One resource as the OpenAPI documents describe it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    schema: dict[str, Any] | None  # a CRD's openAPIV3Schema; None for built-in kinds


def group_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(group: str, version: str, kind: str) -> str:
    if not group:
        return f"io.k8s.api.core.{version}.{kind}"
    reversed_group = ".".join(reversed(group.split(".")))
    return f"{reversed_group}.{version}.{kind}"


def document(served: list[Served], group: str, version: str) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {_OBJECT_META: _META_SCHEMA}
    for res in served:
        if (res.group, res.version) != (group, version):
            continue
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        ref = {"$ref": f"#/components/schemas/{schema_name(group, version, res.kind)}"}
        schemas[schema_name(group, version, res.kind)] = _kind_schema(res, gvk)
        base = "/" + group_path(group, version)
        prefix = f"{base}/namespaces/{{namespace}}" if res.namespaced else base
        item = f"{prefix}/{res.plural}/{{name}}"
        paths[f"{prefix}/{res.plural}"] = {
            "get": _operation("list", gvk, ref),
            "post": _operation("post", gvk, ref, body=("application/json",)),
        }
        patch_types: tuple[str, ...] = _CUSTOM_PATCH_TYPES
        if res.schema is None:
            patch_types = (*patch_types, "application/strategic-merge-patch+json")
        paths[item] = {
            "get": _operation("get", gvk, ref),
            "put": _operation("put", gvk, ref, body=("application/json",)),
            "patch": _operation("patch", gvk, ref, body=patch_types),
            "delete": _operation("delete", gvk, ref),
        }
        paths[f"{item}/status"] = {"patch": _operation("patch", gvk, ref, body=patch_types)}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def index(served: list[Served]) -> dict[str, Any]:
    """`/openapi/v3`: where each group-version's document is (with a content hash)."""
    out: dict[str, Any] = {}
    for group, version in sorted({(s.group, s.version) for s in served}):
        doc = json.dumps(document(served, group, version), sort_keys=True).encode()
        digest = hashlib.sha512(doc).hexdigest()[:32].upper()
        path = group_path(group, version)
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}


def _operation(
    action: str, gvk: dict[str, str], ref: dict[str, str], body: tuple[str, ...] = ()
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "parameters": [_FIELD_VALIDATION, *_QUERY] if body else list(_QUERY),
        "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body:
        operation["requestBody"] = {"content": {t: {"schema": ref} for t in body}}
    return operation


def _kind_schema(res: Served, gvk: dict[str, str]) -> dict[str, Any]:
    if res.schema is None:
        schema: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    else:
        schema = copy.deepcopy(res.schema)
        schema.setdefault("properties", {})["metadata"] = {
            "allOf": [{"$ref": f"#/components/schemas/{_OBJECT_META}"}],
            "default": {},
            "description": "Standard object's metadata.",
        }
    schema["x-kubernetes-group-version-kind"] = [gvk]
    return schema


def swagger_v2(served: list[Served]) -> dict[str, Any]:
    """`/openapi/v2` as JSON: every group-version's schemas as Swagger 2.0 definitions.

    kubectl itself asks for `/openapi/v2` in protobuf only, which the emulator does not
    speak (it answers 404 there, as an API server without the v2 endpoint would); kubectl
    then works from `/openapi/v3`. JSON clients get this document."""
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for group, version in sorted({(s.group, s.version) for s in served}):
        doc = document(served, group, version)
        for name, schema in doc["components"]["schemas"].items():
            text = json.dumps(schema).replace("#/components/schemas/", "#/definitions/")
            definitions[name] = json.loads(text)
        for path, operations in doc["paths"].items():
            paths[path] = {
                verb: {
                    "parameters": op["parameters"],
                    "consumes": list(op.get("requestBody", {}).get("content", {})),
                    "x-kubernetes-action": op["x-kubernetes-action"],
                    "x-kubernetes-group-version-kind": op["x-kubernetes-group-version-kind"],
                }
                for verb, op in operations.items()
            }
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "definitions": definitions,
    }
