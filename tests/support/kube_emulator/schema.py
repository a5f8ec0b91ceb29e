"""A CRD's structural schema applied to an object: pruning, defaulting, validation.

What the API server does with a custom resource before it stores it
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/):
it drops fields the schema does not know ("Field pruning"), fills in `default:` values
("Defaulting"), then checks the result against the schema ("Validation"). The messages are
the API server's own (k8s.io/apiextensions-apiserver/pkg/apiserver/validation, whose test
table pins them), e.g. `spec.replicas: Invalid value: "string": spec.replicas in body must be
of type integer: "string"`.

Pure functions over plain JSON values; the emulator calls them.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

# Root fields the API server handles itself (ObjectMeta is validated apart from the schema).
_ROOT_KEPT = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class Cause:
    """One entry of a Status' details.causes: the field, the reason and the message."""

    field: str
    reason: str
    message: str

    def text(self) -> str:
        return f"{self.field}: {self.message}"


def type_name(value: Any) -> str:
    """The JSON type of a value, as the API server names it in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_value(value: Any) -> str:
    """A value as Go's field errors print it: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# --- pruning ---------------------------------------------------------------------------


def prune(schema: Schema, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The object without the fields the schema does not declare, and those fields' paths."""
    unknown: list[str] = []
    out = copy.deepcopy(obj)
    for key in list(out):
        if key in _ROOT_KEPT:
            continue
        sub = schema.get("properties", {}).get(key)
        if sub is None:
            unknown.append(key)
            del out[key]
        else:
            out[key] = _prune(sub, out[key], key, unknown)
    return out, unknown


def _prune(schema: Schema, value: Any, path: str, unknown: list[str]) -> Any:
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-embedded-resource"
    ):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        if properties is None and isinstance(additional, dict):
            return {k: _prune(additional, v, child(path, k), unknown) for k, v in value.items()}
        if properties is None and schema.get("type") == "object" and additional is None:
            # `type: object` and nothing else: a free-form map is not structural; the API
            # server prunes everything under it.
            unknown.extend(child(path, k) for k in value)
            return {}
        kept = {}
        for key, sub_value in value.items():
            sub = (properties or {}).get(key)
            if sub is None:
                unknown.append(child(path, key))
            else:
                kept[key] = _prune(sub, sub_value, child(path, key), unknown)
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], v, child(path, i), unknown) for i, v in enumerate(value)]
    return value


# --- defaulting ------------------------------------------------------------------------


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Fill in `default:` for absent fields of objects that are present (never of absent
    parents), recursively, as the API server does on every request and read."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value and value[key] is not None:
                value[key] = apply_defaults(sub, value[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in properties:
                    value[key] = apply_defaults(additional, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


# --- validation ------------------------------------------------------------------------


def validate(schema: Schema, value: Any, path: str = "") -> list[Cause]:
    """Every way `value` (found at `path`) breaks `schema`."""
    if value is None and schema.get("nullable"):
        return []
    causes = _check_type(schema, value, path)
    causes += _check_enum(schema, value, path)
    if causes:
        return causes
    if isinstance(value, bool):
        return causes
    if isinstance(value, int | float):
        return _check_number(schema, value, path)
    if isinstance(value, str):
        return _check_string(schema, value, path)
    if isinstance(value, list):
        return _check_array(schema, value, path)
    if isinstance(value, dict):
        return _check_object(schema, value, path)
    return causes


def _invalid(path: str, shown: Any, detail: str) -> Cause:
    return Cause(path, "FieldValueInvalid", f"Invalid value: {go_value(shown)}: {detail}")


def _check_type(schema: Schema, value: Any, path: str) -> list[Cause]:
    actual = type_name(value)
    if schema.get("x-kubernetes-int-or-string"):
        if actual in ("integer", "string"):
            return []
        return [_invalid(path, actual, f"{path} in body must be of type integer,string: "
                         f'"{actual}"')]  # fmt: skip
    wanted = schema.get("type")
    if wanted is None or actual == wanted or (wanted == "number" and actual == "integer"):
        return []
    return [_invalid(path, actual, f'{path} in body must be of type {wanted}: "{actual}"')]


def _check_enum(schema: Schema, value: Any, path: str) -> list[Cause]:
    allowed = schema.get("enum")
    if allowed is None or value in allowed:
        return []
    supported = ", ".join(go_value(v) for v in allowed)
    return [
        Cause(
            path,
            "FieldValueNotSupported",
            f"Unsupported value: {go_value(value)}: supported values: {supported}",
        )
    ]


def _check_number(schema: Schema, value: float, path: str) -> list[Cause]:
    causes = []
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            causes.append(_invalid(path, value, f"{path} in body should be greater than {low}"))
        elif value < low:
            causes.append(
                _invalid(path, value, f"{path} in body should be greater than or equal to {low}")
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            causes.append(_invalid(path, value, f"{path} in body should be less than {high}"))
        elif value > high:
            causes.append(
                _invalid(path, value, f"{path} in body should be less than or equal to {high}")
            )
    if "multipleOf" in schema and value % schema["multipleOf"]:
        causes.append(
            _invalid(path, value, f"{path} in body should be a multiple of {schema['multipleOf']}")
        )
    return causes


def _check_string(schema: Schema, value: str, path: str) -> list[Cause]:
    causes = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        causes.append(
            Cause(
                path,
                "FieldValueTooLong",
                f"Too long: may not be more than {schema['maxLength']} bytes",
            )
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        causes.append(
            _invalid(
                path, value, f"{path} in body should be at least {schema['minLength']} chars long"
            )
        )
    pattern = schema.get("pattern")
    if pattern is not None and re.search(pattern, value) is None:
        causes.append(_invalid(path, value, f"{path} in body should match '{pattern}'"))
    return causes


def _check_array(schema: Schema, value: list[Any], path: str) -> list[Cause]:
    causes = []
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(
            Cause(
                path,
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        )
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(
            _invalid(path, value, f"{path} in body should have at least {schema['minItems']} items")
        )
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            causes += validate(items, item, child(path, i))
    return causes


def _check_object(schema: Schema, value: dict[str, Any], path: str) -> list[Cause]:
    causes = [
        Cause(child(path, name), "FieldValueRequired", "Required value")
        for name in schema.get("required", [])
        if name not in value
    ]
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(
            Cause(
                path,
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
            )
        )
    properties = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    for key, sub_value in value.items():
        sub = properties.get(key)
        if sub is None and isinstance(additional, dict):
            sub = additional
        if sub is not None and not (path == "" and key == "metadata"):
            causes += validate(sub, sub_value, child(path, key))
    return causes


# --- ratcheting ------------------------------------------------------------------------

_MISSING = object()


def value_at(obj: Any, path: str) -> Any:
    """The value at a cause's field path (`spec.items[0].name`), or a marker if absent."""
    node = obj
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return _MISSING
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def ratchet(causes: list[Cause], before: Any, after: Any) -> list[Cause]:
    """Validation ratcheting (on by default since Kubernetes 1.30): on an update, a failure
    at a field whose value did not change is let through, so an object admitted under an
    older schema can still be written (status, labels...)."""
    return [c for c in causes if value_at(before, c.field) != value_at(after, c.field)]
