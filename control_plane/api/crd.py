"""Render the CustomResourceDefinitions from the pydantic types.

The types in this package are the single source of truth; `k8s/crds/*.yaml` are generated
from them (`hoist crds --out k8s/crds`) and a test fails when the two drift.

Kubernetes wants a *structural* OpenAPI v3 schema: every node typed, no `$ref`, nullable
instead of `null` types, `x-kubernetes-int-or-string` instead of an integer/string union.
`to_structural` converts pydantic's JSON Schema into that form.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from control_plane.api.constants import (
    GROUP,
    LORA_ADAPTER_KIND,
    LORA_ADAPTER_PLURAL,
    MODEL_KIND,
    MODEL_PLURAL,
    TENANT_KIND,
    TENANT_PLURAL,
    VERSION,
)
from control_plane.api.engine_options import engine_args_cel_rule
from control_plane.api.lora_adapter import LoraAdapterSpec, LoraAdapterStatus
from control_plane.api.model import ModelSpec, ModelStatus
from control_plane.api.tenant import TenantSpec, TenantStatus

JsonSchema = dict[str, Any]

_DROPPED_KEYS = {"title", "$defs"}
_SCALAR_TYPES = {"string", "integer", "number", "boolean"}
_EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def _resolve(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = dict(defs[ref.rsplit("/", 1)[-1]])
    # Keys next to a $ref (description, default) refine the referenced schema.
    target.update({k: v for k, v in node.items() if k != "$ref"})
    return target


def to_structural(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Convert one pydantic JSON Schema node (and its children) into a structural schema."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        return _union(node, defs)
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or _dropped_default(key, value, node):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in _EXCLUSIVE_BOUNDS:
            # JSON Schema's numeric exclusive bound -> OpenAPI 3.0's bound plus a boolean flag
            out[_EXCLUSIVE_BOUNDS[key]] = value
            out[key] = True
        elif key == "properties":
            out["properties"] = {name: to_structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_structural(value, defs)
        elif key == "additionalProperties" and value is False:
            continue  # structural schemas prune unknown fields; strict kubectl refuses them
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    return out


def _dropped_default(key: str, value: object, node: JsonSchema) -> bool:
    """Object and list defaults are the types' business, not the API server's."""
    return key == "default" and (value is None or node.get("type") not in _SCALAR_TYPES)


def _union(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """`X | None` becomes nullable X; `int | str` becomes int-or-string."""
    variants = node["anyOf"]
    concrete = [_resolve(v, defs) for v in variants if v.get("type") != "null"]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    out: JsonSchema
    if len(concrete) == 1:
        out = to_structural({**concrete[0], **rest}, defs)
    elif {v.get("type") for v in concrete} == {"integer", "string"}:
        out = {k: v for k, v in rest.items() if k not in _DROPPED_KEYS}
        out["x-kubernetes-int-or-string"] = True
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    else:
        raise ValueError(f"cannot express this union in a structural schema: {variants}")
    if len(concrete) < len(variants):
        out["nullable"] = True
        out.pop("default", None)
    return out


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def structural_schema(model: type[BaseModel]) -> JsonSchema:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return to_structural(schema, schema.get("$defs", {}))


# Rules the API server checks at `kubectl apply` that a per-field schema cannot say.
_MODEL_RULES = [
    {
        "rule": "!has(self.minReplicas) || !has(self.maxReplicas)"
        " || self.minReplicas <= self.maxReplicas",
        "message": "minReplicas must not exceed maxReplicas",
    },
    {
        "rule": "!has(self.task) || self.task == 'generate'"
        " || (!has(self.toolCallParser) && !has(self.reasoningParser))",
        "message": "toolCallParser and reasoningParser need task: generate",
    },
    {
        "rule": "!has(self.replicas)"
        " || ((!has(self.minReplicas) || self.minReplicas <= self.replicas)"
        " && (!has(self.maxReplicas) || self.replicas <= self.maxReplicas))",
        "message": "replicas must lie within [minReplicas, maxReplicas]",
    },
]
_ENGINE_ARGS_RULES = [
    {
        "rule": engine_args_cel_rule(),
        "message": "engineArgs must not set a flag the pod sets itself or a spec field owns"
        " (host, port, model, LoRA, parallelism, KV cache, tools, chat template, task)",
    },
]
_AUTOSCALING_RULES = [
    {
        "rule": "!has(self.panicWindowSeconds) || !has(self.stableWindowSeconds)"
        " || self.panicWindowSeconds <= self.stableWindowSeconds",
        "message": "panicWindowSeconds must not exceed stableWindowSeconds",
    },
]
# On the `placement.replicas` node itself (a rule there runs only when the field is set;
# `has(self)` is not valid CEL, so the API server would refuse a CRD that said it).
_PLACEMENT_REPLICAS_RULES = [
    {
        "rule": "type(self) == int ? self >= 1 : self == 'all'",
        "message": "placement.replicas is a positive count or 'all'",
    },
]


def _crd(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    spec: JsonSchema,
    status: JsonSchema,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["hoist"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def _col(name: str, path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


def model_crd() -> dict[str, Any]:
    spec = structural_schema(ModelSpec)
    spec["x-kubernetes-validations"] = _MODEL_RULES
    spec["properties"]["autoscaling"]["x-kubernetes-validations"] = _AUTOSCALING_RULES
    spec["properties"]["engineArgs"]["x-kubernetes-validations"] = _ENGINE_ARGS_RULES
    return _crd(
        kind=MODEL_KIND,
        plural=MODEL_PLURAL,
        short_names=["hm", "hmodel"],
        spec=spec,
        status=structural_schema(ModelStatus),
        columns=[
            _col("Engine", ".spec.engine"),
            _col("Desired", ".status.desiredReplicas", "integer"),
            _col("Ready", ".status.readyReplicas", "integer"),
            _col("Phase", ".status.phase"),
            _col("Restarts", ".status.engineRestarts", "integer", priority=1),
            _col("Reason", ".status.scalingReason", priority=1),
            _col("Source", ".spec.source", priority=1),
            _col("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def lora_adapter_crd() -> dict[str, Any]:
    spec = structural_schema(LoraAdapterSpec)
    placement = spec["properties"]["placement"]["properties"]
    placement["replicas"]["x-kubernetes-validations"] = _PLACEMENT_REPLICAS_RULES
    return _crd(
        kind=LORA_ADAPTER_KIND,
        plural=LORA_ADAPTER_PLURAL,
        short_names=["lora", "loras"],
        spec=spec,
        status=structural_schema(LoraAdapterStatus),
        columns=[
            _col("Base", ".spec.baseModel"),
            _col("Phase", ".status.phase"),
            _col("Ready", ".status.readyReplicas", "integer"),
            _col("Desired", ".status.desiredReplicas", "integer"),
            _col("Source", ".spec.source", priority=1),
            _col("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def tenant_crd() -> dict[str, Any]:
    return _crd(
        kind=TENANT_KIND,
        plural=TENANT_PLURAL,
        short_names=["ht", "htenant"],
        spec=structural_schema(TenantSpec),
        status=structural_schema(TenantStatus),
        columns=[
            _col("Phase", ".status.phase"),
            _col("Keys", ".status.keys", "integer"),
            _col("Weight", ".spec.weight", "integer"),
            _col("RPM", ".spec.quotas.requestsPerMinute", "integer"),
            _col("TPM", ".spec.quotas.tokensPerMinute", "integer"),
            _col("Concurrent", ".spec.quotas.concurrentRequests", "integer"),
            _col("Secret", ".spec.apiKeysSecret.name", priority=1),
            _col("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


HEADER = "# Generated from control_plane/api by `hoist crds --out k8s/crds`. Do not edit.\n"


def render_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    return {
        f"{crd['metadata']['name']}.yaml": HEADER + yaml.safe_dump(crd, sort_keys=False)
        for crd in (model_crd(), lora_adapter_crd(), tenant_crd())
    }
