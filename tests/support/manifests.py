"""Validate Kubernetes manifests with no cluster: built-in kinds, Hoist's CRs, monitoring kinds.

- Built-in kinds: PyPI `kubernetes-validate`, strict (unknown fields refused), against the
  oldest and the newest Kubernetes minor we support.
- Hoist's custom resources (`Model`, `LoraAdapter`): the CRD's openAPIV3Schema turned into
  a JSON Schema (nullable, int-or-string, unknown fields refused as `kubectl apply`
  refuses them) and checked with `jsonschema`; the pydantic types check them too.
- The Prometheus Operator's kinds: a JSON Schema of the fields Hoist uses, strict, written
  from the operator's API reference (monitoring.coreos.com/v1). A typo in a field name is
  what it catches; it does not claim to be the operator's whole schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRDS = K8S / "crds"
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
"""Oldest Kubernetes minor Hoist supports (CEL rules and policy/v1 are GA there) and newest."""

Doc = dict[str, Any]


def documents(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def documents_of_text(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def kind_of(doc: Doc) -> str:
    return f"{doc['apiVersion'].split('/')[0]}/{doc['kind']}"


# --- Hoist's custom resources -----------------------------------------------------------


def openapi_to_json_schema(node: Doc) -> Doc:
    """A structural openAPIV3Schema node as the JSON Schema `kubectl apply` enforces."""
    out: Doc = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: openapi_to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = openapi_to_json_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [openapi_to_json_schema(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue  # handled below (CEL rules are checked by the pydantic types)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            bound = node["minimum" if key == "exclusiveMinimum" else "maximum"]
            out[key] = bound if value else None
        else:
            out[key] = value
    out = {k: v for k, v in out.items() if v is not None}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") in ("object", ["object", "null"])
        and "properties" in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out.setdefault("additionalProperties", False)
    return out


def crd_schemas() -> dict[str, Doc]:
    """`group/Kind` -> JSON Schema of each CRD in k8s/crds (its storage version)."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in documents(path):
            spec = crd["spec"]
            version = next(v for v in spec["versions"] if v["storage"])
            schema = openapi_to_json_schema(version["schema"]["openAPIV3Schema"])
            schemas[f"{spec['group']}/{spec['names']['kind']}"] = schema
    return schemas


# --- The Prometheus Operator's kinds, as far as Hoist uses them ---------------------------

_STR = {"type": "string"}
_LABELS = {"type": "object", "additionalProperties": _STR}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _LABELS,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": _STR,
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": _STR},
                },
            },
        },
    },
}
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
    r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        },
        "targetLabel": _STR,
        "regex": _STR,
        "replacement": _STR,
        "separator": _STR,
        "action": {
            "enum": [
                "replace",
                "keep",
                "drop",
                "labelmap",
                "labeldrop",
                "labelkeep",
                "hashmod",
                "lowercase",
                "uppercase",
                "keepequal",
                "dropequal",
            ]
        },
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": _STR,
        "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "path": _STR,
        "scheme": {"enum": ["http", "https"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array", "items": _RELABELING},
        "metricRelabelings": {"type": "array", "items": _RELABELING},
        # prometheus-operator's SafeAuthorization: a credential from a Secret's key
        "authorization": {
            "type": "object",
            "additionalProperties": False,
            "required": ["credentials"],
            "properties": {
                "type": _STR,
                "credentials": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["key"],
                    "properties": {
                        "name": _STR,
                        "key": _STR,
                        "optional": {"type": "boolean"},
                    },
                },
            },
        },
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _STR, "namespace": _STR, "labels": _LABELS, "annotations": _LABELS},
}


def _kind(kind: str, spec: Doc) -> Doc:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
    "properties": {
        "record": _STR,
        "alert": _STR,
        "expr": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "for": _DURATION,
        "keep_firing_for": _DURATION,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
}
MONITORING_SCHEMAS: dict[str, Doc] = {
    "monitoring.coreos.com/ServiceMonitor": _kind(
        "ServiceMonitor",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": _STR,
                "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
        },
    ),
    "monitoring.coreos.com/PodMonitor": _kind(
        "PodMonitor",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": _STR,
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
        },
    ),
    "monitoring.coreos.com/PrometheusRule": _kind(
        "PrometheusRule",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": _STR,
                            "interval": _DURATION,
                            "rules": {"type": "array", "items": _RULE},
                        },
                    },
                }
            },
        },
    ),
}


# --- One entry point --------------------------------------------------------------------


def problems(doc: Doc) -> Iterator[str]:
    """Every reason `doc` would be refused; nothing when it is valid."""
    what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    kind = kind_of(doc)
    schema = MONITORING_SCHEMAS.get(kind) or crd_schemas().get(kind)
    if schema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        for error in validator.iter_errors(doc):
            path = ".".join(str(p) for p in error.absolute_path)
            yield f"{what}: {path}: {error.message}"
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            yield f"{what} (Kubernetes {version}): {path}: {exc.message}"
        except kubernetes_validate.SchemaNotFoundError:
            yield f"{what}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in {version}"
