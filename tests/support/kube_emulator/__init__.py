"""A Kubernetes API for tests: kmock's emulator, made to refuse what an API server refuses.

`python -m tests.support.kube_emulator --port PORT --kubeconfig FILE` serves it on its own.
What it enforces, and what it does not: docs/testing.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import kmock
import yaml

from control_plane.api.crd import lora_adapter_crd, model_crd, tenant_crd
from tests.support.kube_emulator.emulator import HoistKubeEmulator
from tests.support.kube_emulator.rbac import OPERATOR_AGENTS, granted, operator_calls

__all__ = [
    "OPERATOR_AGENTS",
    "HoistKubeEmulator",
    "granted",
    "hoist_emulator",
    "operator_calls",
    "running_emulator",
    "write_kubeconfig",
]

# Built-in kinds: the ones the operators touch and the ones k8s/ declares.
BUILT_IN = [
    ("v1/pods", "Pod", True),
    ("v1/services", "Service", True),
    ("v1/secrets", "Secret", True),
    ("v1/configmaps", "ConfigMap", True),
    ("v1/serviceaccounts", "ServiceAccount", True),
    ("v1/events", "Event", True),
    ("v1/resourcequotas", "ResourceQuota", True),
    ("v1/namespaces", "Namespace", False),
    ("apps/v1/deployments", "Deployment", True),
    ("policy/v1/poddisruptionbudgets", "PodDisruptionBudget", True),
    ("networking.k8s.io/v1/networkpolicies", "NetworkPolicy", True),
    ("discovery.k8s.io/v1/endpointslices", "EndpointSlice", True),
    ("rbac.authorization.k8s.io/v1/roles", "Role", True),
    ("rbac.authorization.k8s.io/v1/rolebindings", "RoleBinding", True),
    ("rbac.authorization.k8s.io/v1/clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1/clusterrolebindings", "ClusterRoleBinding", False),
    ("apiextensions.k8s.io/v1/customresourcedefinitions", "CustomResourceDefinition", False),
    ("kopf.dev/v1/kopfpeerings", "KopfPeering", True),
    ("kopf.dev/v1/clusterkopfpeerings", "ClusterKopfPeering", False),
]


def hoist_emulator() -> HoistKubeEmulator:
    """An emulator serving Hoist's CRDs, the built-in kinds above and kopf's peerings."""
    emulator = HoistKubeEmulator()
    for crd in (model_crd(), lora_adapter_crd(), tenant_crd()):
        emulator.declare_crd(crd)
    for key, kind, namespaced in BUILT_IN:
        emulator.declare(key, kind, namespaced=namespaced)
    return emulator


@asynccontextmanager
async def running_emulator() -> AsyncIterator[tuple[HoistKubeEmulator, str]]:
    """The emulator listening on 127.0.0.1 (ephemeral port), and its URL."""
    async with hoist_emulator() as emulator, kmock.Server(emulator) as server:
        yield emulator, str(server.url).rstrip("/")


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "test"}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "tester", "namespace": "default"},
            }
        ],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path
