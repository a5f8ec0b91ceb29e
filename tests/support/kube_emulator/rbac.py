"""Which API calls the operator made, and which calls RBAC roles grant (for the RBAC test)."""

from __future__ import annotations

from typing import Any

import kmock

OPERATOR_AGENTS = ("kopf/", "hoist-operator")


def operator_calls(emulator: kmock.KubernetesEmulator) -> set[tuple[str, str, str]]:
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
