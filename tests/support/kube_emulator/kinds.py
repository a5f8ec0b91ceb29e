"""What the emulator knows of each resource, and the selectors that filter them.

Label selectors: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
(the equality-based forms); field selectors: .../working-with-objects/field-selectors/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.kube_emulator import tables


@dataclass
class Kind:
    """What the emulator knows of one resource."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    schema: dict[str, Any] | None = None  # a CRD's openAPIV3Schema
    status: bool = False  # has a status subresource
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def matches_labels(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        match = re.fullmatch(r"([^=!]+)(!=|==|=)(.*)", term)
        if match is None:
            present = term.lstrip("!") in labels
            if present == term.startswith("!"):
                return False
        elif (labels.get(match[1].strip()) == match[3].strip()) == (match[2] == "!="):
            return False
    return True


def _selector_terms(selector: str) -> list[tuple[str, str, str]]:
    out = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        match = re.fullmatch(r"([^=!]+)(!=|==|=)(.*)", term)
        if match:
            out.append((match[1].strip(), match[2], match[3].strip()))
    return out


def field_matches(obj: dict[str, Any], selector: str) -> bool:
    for key, op, value in _selector_terms(selector):
        actual = tables.jsonpath(obj, key)
        if (op == "!=") == (str(actual) == value):
            return False
    return True
