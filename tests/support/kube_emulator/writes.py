"""How a write turns the stored object into the next one: patch types, apply, subresources.

https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply and
https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/:
- `application/json-patch+json` (RFC 6902), `application/merge-patch+json` (RFC 7386);
- `application/strategic-merge-patch+json` is for built-in kinds only (415 for custom
  resources); here lists of objects with a `name` merge by name, every other list is
  replaced, the `$patch`/`$setElementOrder`/`$retainKeys` directives are read or dropped;
- `application/apply-patch+yaml` (server-side apply): the applied configuration is merged
  into the object, and fields this field manager applied before but no longer applies are
  removed. Field ownership between several managers is simplified: no conflicts are
  reported, each manager's last applied configuration is what it owns.
And https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource:
with a status subresource, writes to the resource ignore `status`, writes to `/status`
ignore everything else, and `metadata.generation` moves only when something other than
metadata and status changes.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902; a failed `test` or a bad path raises jsonpatch's errors."""
    result: dict[str, Any] = jsonpatch.apply_patch(target, operations, in_place=False)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and _named(value) and _named(out.get(key)):
            order = patch.get(f"$setElementOrder/{key}")
            out[key] = _merge_named(out[key], value, order)
        else:
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
    return out


def _named(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, dict) and "name" in i for i in items)


def _merge_named(
    current: list[dict[str, Any]], patch: list[dict[str, Any]], order: list[Any] | None
) -> list[dict[str, Any]]:
    by_name = {item["name"]: item for item in current}
    for item in patch:
        if item.get("$patch") == "delete":
            by_name.pop(item["name"], None)
        else:
            by_name[item["name"]] = strategic_merge(by_name.get(item["name"]), item)
    names = [o["name"] for o in order] if order else list(by_name)
    return [by_name[n] for n in names if n in by_name] + [
        v for n, v in by_name.items() if n not in names
    ]


def server_side_apply(
    current: dict[str, Any] | None,
    applied: dict[str, Any],
    previously_applied: dict[str, Any] | None,
) -> dict[str, Any]:
    """The object after this manager applies `applied` (having applied
    `previously_applied` before)."""
    base = copy.deepcopy(current) if current is not None else {}
    if previously_applied is not None:
        base = _drop_released(base, previously_applied, applied)
    result: dict[str, Any] = _apply_merge(base, applied)
    return result


def _drop_released(obj: Any, before: Any, now: Any) -> Any:
    if not isinstance(obj, dict) or not isinstance(before, dict):
        return obj
    now = now if isinstance(now, dict) else {}
    out = dict(obj)
    for key, old_value in before.items():
        if key not in now:
            out.pop(key, None)
        elif key in out:
            out[key] = _drop_released(out[key], old_value, now[key])
    return out


def _apply_merge(target: Any, applied: Any) -> Any:
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    out = dict(target)
    for key, value in applied.items():
        out[key] = _apply_merge(out.get(key), value)
    return out


def fields_v1(applied: Any) -> Any:
    """The `fieldsV1` set of a managedFields entry for an applied configuration."""
    if not isinstance(applied, dict):
        return {}
    return {f"f:{k}": fields_v1(v) for k, v in applied.items() if k not in ("apiVersion", "kind")}


def separate_status(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    *,
    to_status: bool,
    has_status: bool,
) -> dict[str, Any]:
    """Keep only the part of the write that its endpoint may change."""
    if not has_status:
        return after
    if to_status:
        assert before is not None
        result = copy.deepcopy(before)
        if "status" in after:
            result["status"] = after["status"]
        else:
            result.pop("status", None)
        return result
    result = dict(after)
    result.pop("status", None)
    if before is not None and "status" in before:
        result["status"] = copy.deepcopy(before["status"])
    return result


def spec_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether anything but metadata and status differs: what moves `generation`."""

    def body(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    return body(before) != body(after)
