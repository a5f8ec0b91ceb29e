"""Kubernetes NetworkPolicy ingress semantics, evaluated on manifests (pure, no cluster).

Enough of the specification to answer "may a pod with these labels, in this namespace,
open this TCP port on that pod?": policies select destination pods by `podSelector`
(matchLabels and matchExpressions); a pod no Ingress policy selects accepts everything; a
selected pod accepts a connection when any rule of any selecting policy admits it. In a
rule, an empty `from` admits every source and an empty `ports` every port; a peer with only
`podSelector` means pods of the policy's own namespace, with only `namespaceSelector` every
pod of the matching namespaces, with both the pods matching both. `ipBlock` peers are not
modelled (Hoist's policies use none; `admits` refuses to guess and raises).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: Doc | None, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches `labels` (an empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_admits(peer: Doc, policy_namespace: str, source: Pod) -> bool:
    if "ipBlock" in peer:
        raise NotImplementedError("ipBlock peers are not modelled")
    pods = peer.get("podSelector")
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        return source.namespace == policy_namespace and selects(pods, source.labels)
    return selects(namespaces, source.namespace_labels) and selects(pods, source.labels)


def _port_admits(ports: list[Doc] | None, port: int) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        number = entry.get("port")
        if number is None:
            return True
        if not isinstance(number, int):
            raise NotImplementedError("named ports are not modelled; use numbers")
        if number <= port <= entry.get("endPort", number):
            return True
    return False


def admits(policies: list[Doc], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `source` may connect to `destination` on TCP `port`, given `policies`."""
    selecting = [
        p
        for p in policies
        if p["kind"] == "NetworkPolicy"
        and p["metadata"].get("namespace", destination.namespace) == destination.namespace
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"].get("podSelector"), destination.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"].get("namespace", destination.namespace)
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            from_ok = not peers or any(_peer_admits(p, namespace, source) for p in peers)
            if from_ok and _port_admits(rule.get("ports"), port):
                return True
    return False
