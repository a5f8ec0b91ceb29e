"""Which object a call is about: a `Ref` (kind, namespace, name, status or not).

Kinds map to lightkube's generic resources, so objects stay plain JSON dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from control_plane.api.constants import (
    GROUP,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
    TENANT_PLURAL,
    VERSION,
)


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    def resource(self) -> Any:
        """lightkube's generic resource class for this kind (created once, then reused).

        `Any`: lightkube types namespaced and cluster-scoped kinds apart by overloads, and
        which one a `Kind` is is known only at run time."""
        api_version = f"{self.group}/{self.version}" if self.group else self.version
        known = resource_registry.get(api_version, self.kind)
        if known is not None:  # lightkube's own lookup misses core-group kinds ("/v1")
            return known
        make = create_namespaced_resource if self.namespaced else create_global_resource
        return make(self.group, self.version, self.kind, self.plural)


KINDS: dict[str, Kind] = {
    k.plural: k
    for k in (
        Kind("", "v1", "Pod", "pods"),
        Kind("", "v1", "Service", "services"),
        Kind("", "v1", "Secret", "secrets"),
        Kind("", "v1", "ConfigMap", "configmaps"),
        Kind("", "v1", "Event", "events"),
        Kind("apps", "v1", "Deployment", "deployments"),
        Kind(GROUP, VERSION, "Model", MODEL_PLURAL),
        Kind(GROUP, VERSION, "LoraAdapter", LORA_ADAPTER_PLURAL),
        Kind(GROUP, VERSION, "Tenant", TENANT_PLURAL),
        Kind("kopf.dev", "v1", "KopfPeering", "kopfpeerings"),
        Kind("kopf.dev", "v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False),
    )
}


@dataclass(frozen=True)
class Ref:
    """One object (`name` set) or a collection (`name` None) of one kind."""

    kind: Kind
    namespace: str | None
    name: str | None = None
    status: bool = False

    def named(self, name: str) -> Ref:
        return replace(self, name=name)

    def status_of(self) -> Ref:
        return replace(self, status=True)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        sub = "/status" if self.status else ""
        return f"{self.kind.plural}/{where}{self.name or ''}{sub}"


def _ref(plural: str, namespace: str | None, name: str | None, sub: str | None = None) -> Ref:
    if sub not in (None, "status"):
        raise ValueError(f"unsupported subresource {sub!r}")
    return Ref(KINDS[plural], namespace, name, status=sub == "status")


def core_ref(namespace: str, plural: str, name: str | None = None) -> Ref:
    return _ref(plural, namespace, name)


def apps_ref(namespace: str, plural: str, name: str | None = None) -> Ref:
    return _ref(plural, namespace, name)


def hoist_ref(namespace: str, plural: str, name: str | None = None, sub: str | None = None) -> Ref:
    return _ref(plural, namespace, name, sub)


def cluster_ref(plural: str, name: str | None = None) -> Ref:
    return _ref(plural, None, name)


def parse_selector(selector: str) -> dict[str, str | None]:
    """An equality-based label selector (`a=b,c`) as lightkube takes it (None: exists)."""
    labels: dict[str, str | None] = {}
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        key, sep, value = term.replace("==", "=").partition("=")
        if "!" in key or (not sep and " " in key):
            raise ValueError(
                f"label selector {selector!r}: only `key=value` and `key` are supported"
            )
        labels[key.strip()] = value.strip() if sep else None
    return labels
