"""`x-kubernetes-validations`: the CEL rules of a CRD's schema, evaluated as the API server does.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules
- a rule sits on a schema node and sees that node's value as `self`;
- a rule that mentions `oldSelf` is a transition rule: it runs only on updates, and only
  where the old object had a value at the same place;
- a failed rule reports `<path>: Invalid value: "<type>": <message>`, where the message is
  `messageExpression`'s result, else `message`, else `failed rule: <rule>`; `fieldPath`
  names a field below the node, `reason` picks the cause type.
Rules on list items run once per item (`spec.items[0]`). The CEL library is PyPI's
common-expression-language (cel-rust's Python bindings).
"""

from __future__ import annotations

import contextlib
import json
import re
from functools import cache
from typing import Any

import cel

from tests.support.kube_emulator.schema import Cause, Schema, child, type_name

ABSENT = object()
_REASON_PREFIX = {
    "FieldValueInvalid": None,
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}
_OLD_SELF = re.compile(r"\boldSelf\b")


@cache
def _program(expression: str) -> Any:
    return cel.compile(expression)


def check_rules(schema: Schema, value: Any, old: Any = ABSENT, path: str = "") -> list[Cause]:
    """Every rule under `schema` that `value` (with `old` as the previous value) breaks."""
    causes: list[Cause] = []
    if value is None:
        return causes
    for rule in schema.get("x-kubernetes-validations", []):
        cause = _check_one(rule, value, old, path)
        if cause is not None:
            causes.append(cause)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key, sub_value in value.items():
            if path == "" and key == "metadata":
                continue
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if sub is not None:
                sub_old = old.get(key, ABSENT) if isinstance(old, dict) else ABSENT
                causes += check_rules(sub, sub_value, sub_old, child(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        # List items are not correlatable to old items (unless the list is a map list):
        # transition rules under them do not run.
        for i, item in enumerate(value):
            causes += check_rules(schema["items"], item, ABSENT, child(path, i))
    return causes


def _check_one(rule: dict[str, Any], value: Any, old: Any, path: str) -> Cause | None:
    expression = rule["rule"]
    transition = _OLD_SELF.search(expression) is not None
    if transition and old is ABSENT:
        return None
    variables = {"self": value}
    if transition:
        variables["oldSelf"] = old
    try:
        passed = _program(expression).execute(variables)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        # The API server reports a rule that errors at run time as a failure of that rule.
        return Cause(path, "FieldValueInvalid", f"Invalid value: {_quoted(value)}: {exc}")
    if passed is True:
        return None
    message = rule.get("message") or f"failed rule: {expression}"
    if rule.get("messageExpression"):
        # the API server falls back to `message` when the expression fails
        with contextlib.suppress(KeyError, ValueError, TypeError, RuntimeError):
            message = str(_program(rule["messageExpression"]).execute(variables))
    field = path
    if rule.get("fieldPath"):
        suffix = rule["fieldPath"].lstrip(".")
        field = f"{path}.{suffix}" if path else suffix
    reason = rule.get("reason", "FieldValueInvalid")
    prefix = _REASON_PREFIX.get(reason)
    text = f"{prefix}: {message}" if prefix else f"Invalid value: {_quoted(value)}: {message}"
    return Cause(field, reason, text)


def _quoted(value: Any) -> str:
    return f'"{type_name(value)}"'


def compile_errors(schema: Schema, path: str) -> list[Cause]:
    """The rules under `schema` that do not compile: the API server refuses such a CRD
    (`...x-kubernetes-validations[0].rule: Invalid value: ...: compilation failed: ...`)."""
    causes = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations", [])):
        for key in ("rule", "messageExpression"):
            if key not in rule:
                continue
            try:
                _program(rule[key])
            except ValueError as exc:
                where = f"{path}.x-kubernetes-validations[{i}].{key}"
                text = f"Invalid value: {json.dumps(rule[key])}: compilation failed: {exc}"
                causes.append(Cause(where, "FieldValueInvalid", text))
    for name, sub in schema.get("properties", {}).items():
        causes += compile_errors(sub, f"{path}.properties[{name}]")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            causes += compile_errors(schema[key], f"{path}.{key}")
    return causes
