"""k8s/: every manifest valid for the API server, every example valid for Hoist, all wired.

No cluster: built-in kinds go through `kubernetes-validate --strict`, custom resources
through their CRD's schema and the pydantic types (tests/support/manifests.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from control_plane.api import LoraAdapter, Model
from control_plane.api.constants import (
    ENGINE_PORT,
    GATEWAY_PORT,
    LABEL_MODEL,
    LABEL_ROLE,
    SIDECAR_PORT,
)
from control_plane.documents import load_paths
from tests.support.manifests import CRDS, K8S, crd_schemas, documents, kind_of, problems

REFERENCE_POD = K8S / "llm-inference-deploy.yaml"
BASE = K8S / "base"
RBAC = BASE / "01-rbac-roles.yaml"
MANIFESTS = [
    *sorted(p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"),
    REFERENCE_POD,
    *sorted(p for p in (K8S / "monitoring").glob("*.yaml") if p.name != "kustomization.yaml"),
]
EXAMPLES = sorted((K8S / "examples").glob("*.yaml"))


def _name(path: Path) -> str:
    return str(path.relative_to(K8S))


@pytest.mark.parametrize("path", MANIFESTS + EXAMPLES, ids=_name)
def test_manifest_is_valid(path: Path) -> None:
    found = [p for doc in documents(path) for p in problems(doc)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_crd_is_valid_for_the_api_server(path: Path) -> None:
    found = [p for doc in documents(path) for p in problems(doc)]
    assert not found, "\n".join(found)


def test_validation_can_fail() -> None:
    deployment = documents(BASE / "02-gateway-deploy.yaml")[1]
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    deployment["spec"]["replica"] = 2
    assert len(list(problems(deployment))) >= 2
    model = documents(K8S / "examples" / "model-gpu.yaml")[0]
    model["spec"]["replicas"] = "two"
    model["spec"]["gpu"] = 1
    found = list(problems(model))
    assert any("replicas" in p for p in found)
    assert any("gpu" in p for p in found)
    monitor = documents(K8S / "monitoring" / "service-monitors.yaml")[0]
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    assert list(problems(monitor))


@pytest.mark.parametrize("path", EXAMPLES, ids=_name)
def test_example_is_a_valid_hoist_resource(path: Path) -> None:
    for doc in documents(path):
        assert kind_of(doc) in crd_schemas()
        resource_type: type[Model] | type[LoraAdapter] = (
            Model if doc["kind"] == "Model" else LoraAdapter
        )
        resource = resource_type.model_validate(doc)
        assert resource.metadata.namespace == "hoist"


def test_examples_refer_to_declared_models() -> None:
    declared = load_paths([K8S / "examples"])
    assert {a.spec.base_model for a in declared.adapters} <= {
        m.metadata.name for m in declared.models
    }
    assert not declared.skipped


# --- The kustomization lists everything ---------------------------------------------------


def _kustomization(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return loaded


def test_base_kustomization_lists_every_manifest() -> None:
    listed = set(_kustomization(BASE)["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    missing = on_disk - listed
    assert not missing, f"add to k8s/base/kustomization.yaml resources: {sorted(missing)}"
    assert listed <= on_disk


def test_only_the_reference_pod_lies_outside_the_base() -> None:
    assert {p.name for p in K8S.glob("*.yaml")} == {REFERENCE_POD.name}, (
        "manifests to deploy belong in k8s/base/ (kustomize reads nothing outside a "
        "kustomization's folder); move k8s/01-rbac-roles.yaml to k8s/base/"
    )


def test_rbac_is_wired_once_it_exists() -> None:
    text = (BASE / "kustomization.yaml").read_text()
    assert "01-rbac-roles.yaml" in text, "the RBAC line must stay in k8s/base/kustomization.yaml"
    if RBAC.exists():
        assert "01-rbac-roles.yaml" in _kustomization(BASE)["resources"], (
            "k8s/base/01-rbac-roles.yaml exists: uncomment its line in the kustomization"
        )


def test_monitoring_component_lists_every_manifest() -> None:
    folder = K8S / "monitoring"
    listed = set(_kustomization(folder)["resources"])
    assert listed == {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}


# --- Pods: labels, ports and hardening agree with constants.py -----------------------------


def _workloads() -> dict[str, dict[str, Any]]:
    found = {}
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == "Deployment":
                found[doc["metadata"]["name"]] = doc
    return found


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers (a native sidecar) and containers."""
    pod = _pod(deployment)
    found: list[dict[str, Any]] = [*pod.get("initContainers", []), *pod["containers"]]
    return found


def _ports(deployment: dict[str, Any]) -> dict[str, int]:
    return {
        port["name"]: port["containerPort"]
        for container in _containers(deployment)
        for port in container.get("ports", [])
    }


def test_roles_and_ports_match_the_constants() -> None:
    workloads = _workloads()
    gateway, controller = workloads["hoist-gateway"], workloads["hoist-controller"]
    reference = documents(REFERENCE_POD)[0]
    assert gateway["spec"]["template"]["metadata"]["labels"][LABEL_ROLE] == "gateway"
    assert controller["spec"]["template"]["metadata"]["labels"][LABEL_ROLE] == "controller"
    labels = reference["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_ROLE] == "inference"
    assert labels[LABEL_MODEL] == reference["metadata"]["name"]
    assert _ports(gateway)["http"] == GATEWAY_PORT
    assert _ports(reference)["http"] == ENGINE_PORT
    assert _ports(reference)["sidecar"] == SIDECAR_PORT


def test_reference_pod_runs_the_gpu_example() -> None:
    reference = documents(REFERENCE_POD)[0]
    (sidecar,) = _pod(reference)["initContainers"]
    (engine,) = _pod(reference)["containers"]
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar, Kubernetes >= 1.29
    args = engine["args"]
    model = Model.model_validate(json.loads(args[args.index("--model-json") + 1]))
    example = Model.model_validate(documents(K8S / "examples" / "model-gpu.yaml")[0])
    assert model.metadata.name == example.metadata.name == reference["metadata"]["name"]
    assert model.spec.source == example.spec.source
    assert args[args.index("--port") + 1] == str(ENGINE_PORT)
    assert sidecar["args"][sidecar["args"].index("--port") + 1] == str(SIDECAR_PORT)
    engine_url = sidecar["args"][sidecar["args"].index("--engine-url") + 1]
    assert engine_url == f"http://127.0.0.1:{ENGINE_PORT}"
    gpus = engine["resources"]["limits"]["nvidia.com/gpu"]
    assert int(gpus) == example.spec.resources.gpus
    mounts = {c["name"]: {m["name"] for m in c["volumeMounts"]} for c in (engine, sidecar)}
    assert "adapters" in mounts["engine"] & mounts["sidecar"], "adapters must be shared"


def test_pod_monitor_scrapes_ports_the_reference_pod_names() -> None:
    monitors = documents(K8S / "monitoring" / "service-monitors.yaml")
    pod_monitor = next(m for m in monitors if m["kind"] == "PodMonitor")
    reference = documents(REFERENCE_POD)[0]
    ports = _ports(reference)
    for endpoint in pod_monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports
        assert ports[endpoint["port"]] != ENGINE_PORT, "the engine API is the gateway's only"
    selector = pod_monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= reference["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("name", ["hoist-gateway", "hoist-controller", "llama-3-8b-instruct"])
def test_pods_are_hardened(name: str) -> None:
    workloads = _workloads()
    deployment = workloads.get(name) or documents(REFERENCE_POD)[0]
    pod = _pod(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # USER in docker/Dockerfile.*
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in _containers(deployment):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "memory" in container["resources"]["limits"]
        assert "livenessProbe" in container
        assert ":" in container["image"]
        assert not container["image"].endswith(":latest")
