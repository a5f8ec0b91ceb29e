"""`kubectl kustomize` renders each overlay in k8s/overlays/, and what it renders is valid."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.manifests import ROOT, documents_of_text, kind_of, problems
from tests.support.tools import tool

OVERLAYS = sorted(p.parent for p in (ROOT / "k8s" / "overlays").glob("*/kustomization.yaml"))
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def render(overlay: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(overlay)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return documents_of_text(result.stdout)


def test_both_overlays_exist() -> None:
    assert [p.name for p in OVERLAYS] == ["cpu-dev", "gpu"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_renders_valid_objects_in_the_hoist_namespace(overlay: Path) -> None:
    docs = render(overlay)
    kinds = Counter(d["kind"] for d in docs)
    for kind in (
        "Namespace",
        "Deployment",
        "Service",
        "ServiceAccount",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ):
        assert kinds[kind] >= 1, f"{overlay.name}: no {kind}"
    assert kinds["CustomResourceDefinition"] == 0, "k8s/crds/ is applied on its own, first"
    found = []
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == "hoist", doc["metadata"]
        found.extend(problems(doc))
    assert not found, "\n".join(found)


def _deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_cpu_dev_is_small_local_and_needs_no_prometheus_operator() -> None:
    docs = render(ROOT / "k8s" / "overlays" / "cpu-dev")
    assert not {d["kind"] for d in docs} & MONITORING_KINDS
    gateway = _deployment(docs, "hoist-gateway")
    assert gateway["spec"]["replicas"] == 1
    assert (
        gateway["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/hoist-dev/hoist-gateway:dev"
    )
    env = _env(_deployment(docs, "hoist-controller"))
    assert env["HOIST_OPERATOR_ENGINE_IMAGE"] == "ghcr.io/hoist-dev/hoist-engine:dev-cpu"
    assert env["HOIST_OPERATOR_SIDECAR_IMAGE"] == "ghcr.io/hoist-dev/hoist-sidecar:dev"
    assert "HOIST_OPERATOR_NAMESPACES" in env, "the patch must merge env, not replace it"
    assert "HOIST_GATEWAY_KUBE_NAMESPACE" in _env(gateway)


def test_gpu_has_monitoring_and_two_gateways() -> None:
    docs = render(ROOT / "k8s" / "overlays" / "gpu")
    kinds = {kind_of(d) for d in docs}
    assert {f"monitoring.coreos.com/{k}" for k in MONITORING_KINDS} <= kinds
    assert _deployment(docs, "hoist-gateway")["spec"]["replicas"] == 2
    dashboards = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"].get("labels", {})
    ]
    assert len(dashboards) == 3
    env = _env(_deployment(docs, "hoist-controller"))
    assert env["HOIST_OPERATOR_ENGINE_IMAGE"] == "ghcr.io/hoist-dev/hoist-engine:0.1.0"
