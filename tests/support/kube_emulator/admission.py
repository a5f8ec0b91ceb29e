"""Admission of a custom resource write, in the API server's order
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/):
status separation, pruning (and `fieldValidation`), defaulting, schema validation, CEL
rules, ratcheting. Pure: the emulator stores what comes out.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.kube_emulator import errors, schema, writes
from tests.support.kube_emulator.cel_rules import ABSENT, check_rules, compile_errors
from tests.support.kube_emulator.kinds import Kind


def admit(
    kind: Kind,
    directive: str,
    to_status: bool,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """Status separation, pruning, defaulting, validation: the object to store, and the
    warnings to send. `directive` is the request's `fieldValidation` (Strict, Warn, Ignore)."""
    after = writes.separate_status(before, after, to_status=to_status, has_status=kind.status)
    after.setdefault("apiVersion", kind.api_version)
    after.setdefault("kind", kind.kind)
    name = after.get("metadata", {}).get("name", "")
    if kind.plural == "customresourcedefinitions":
        check_crd(kind, name, after)
    if kind.schema is None:
        return after, []
    after, unknown = schema.prune(kind.schema, after)
    texts = [f'unknown field "{path}"' for path in unknown]
    if texts and directive == "Strict":
        raise errors.bad_request(
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}:'
            f" strict decoding error: {', '.join(texts)}"
        )
    after = schema.apply_defaults(kind.schema, after)
    causes = schema.validate(kind.schema, after)
    if not causes:
        old = before if before is not None else ABSENT
        causes = check_rules(kind.schema, after, old)
    if before is not None:
        old_defaulted = schema.apply_defaults(kind.schema, copy.deepcopy(before))
        causes = schema.ratchet(causes, old_defaulted, after)
    if causes:
        raise errors.invalid(kind.kind, kind.group, name, causes)
    return after, texts if directive == "Warn" else []


def check_crd(kind: Kind, name: str, crd: dict[str, Any]) -> None:
    causes = []
    for i, version in enumerate(crd.get("spec", {}).get("versions", [])):
        found = version.get("schema", {}).get("openAPIV3Schema")
        if found is not None:
            causes += compile_errors(found, f"spec.versions[{i}].schema.openAPIV3Schema")
    if causes:
        raise errors.invalid(kind.kind, kind.group, name, causes)


REQUIRED_NAME = schema.Cause(
    "metadata.name", "FieldValueRequired", "Required value: name or generateName is required"
)
