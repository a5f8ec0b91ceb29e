"""k8s/base/04-network-policies.yaml does what it says: only the controller reaches sidecars' adapter
API, only the gateway reaches engines; Prometheus reaches the metrics ports and no more."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.api.constants import (
    ENGINE_PORT,
    GATEWAY_PORT,
    KV_EVENTS_PORT_OFFSET,
    SIDECAR_PORT,
)
from tests.support.manifests import K8S, documents
from tests.support.network_policy import Pod, admits, selects

ENGINE_METRICS_PORT = 8001
KV_EVENTS_PORT = ENGINE_PORT + KV_EVENTS_PORT_OFFSET
CONTROLLER_METRICS_PORT = 9090
NAMESPACE = "hoist"


def _template_labels(path: str, name: str) -> dict[str, str]:
    doc = next(
        d
        for d in documents(K8S / path)
        if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def _policies() -> list[dict[str, Any]]:
    # kustomize puts them in the `hoist` namespace (k8s/kustomization.yaml).
    docs = documents(K8S / "base" / "04-network-policies.yaml")
    for doc in docs:
        doc["metadata"]["namespace"] = NAMESPACE
    return docs


GATEWAY = Pod(NAMESPACE, _template_labels("base/02-gateway-deploy.yaml", "hoist-gateway"))
CONTROLLER = Pod(NAMESPACE, _template_labels("base/03-controller-deploy.yaml", "hoist-controller"))
INFERENCE = Pod(NAMESPACE, _template_labels("llm-inference-deploy.yaml", "llama-3-8b-instruct"))
OTHER_POD = Pod(NAMESPACE, {"app": "debug-shell"})
IMPOSTOR = Pod("tenant-a", {"serving.hoist.dev/role": "gateway"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
OTHER_MONITORING_POD = Pod("monitoring", {"app.kubernetes.io/name": "grafana"})
CLIENT = Pod("apps", {"app": "chat-frontend"})


@pytest.mark.parametrize(
    ("source", "destination", "port", "allowed"),
    [
        pytest.param(GATEWAY, INFERENCE, ENGINE_PORT, True, id="gateway-to-engine"),
        pytest.param(GATEWAY, INFERENCE, SIDECAR_PORT, False, id="gateway-to-sidecar"),
        pytest.param(GATEWAY, INFERENCE, KV_EVENTS_PORT, True, id="gateway-to-kv-events"),
        pytest.param(OTHER_POD, INFERENCE, KV_EVENTS_PORT, False, id="other-pod-to-kv-events"),
        pytest.param(CONTROLLER, INFERENCE, SIDECAR_PORT, True, id="controller-to-sidecar"),
        pytest.param(CONTROLLER, INFERENCE, ENGINE_PORT, False, id="controller-to-engine"),
        pytest.param(OTHER_POD, INFERENCE, ENGINE_PORT, False, id="other-pod-to-engine"),
        pytest.param(OTHER_POD, INFERENCE, SIDECAR_PORT, False, id="other-pod-to-sidecar"),
        pytest.param(IMPOSTOR, INFERENCE, ENGINE_PORT, False, id="gateway-label-elsewhere"),
        pytest.param(CLIENT, INFERENCE, ENGINE_PORT, False, id="client-to-engine"),
        pytest.param(PROMETHEUS, INFERENCE, SIDECAR_PORT, True, id="prometheus-to-sidecar"),
        pytest.param(
            PROMETHEUS, INFERENCE, ENGINE_METRICS_PORT, True, id="prometheus-to-engine-metrics"
        ),
        pytest.param(PROMETHEUS, INFERENCE, ENGINE_PORT, False, id="prometheus-to-engine-api"),
        pytest.param(OTHER_MONITORING_POD, INFERENCE, SIDECAR_PORT, False, id="grafana-to-sidecar"),
        pytest.param(
            PROMETHEUS, CONTROLLER, CONTROLLER_METRICS_PORT, True, id="prometheus-to-controller"
        ),
        pytest.param(CLIENT, CONTROLLER, CONTROLLER_METRICS_PORT, False, id="client-to-controller"),
        pytest.param(CLIENT, GATEWAY, GATEWAY_PORT, True, id="client-to-gateway"),
        pytest.param(CLIENT, GATEWAY, 22, False, id="client-to-gateway-other-port"),
    ],
)
def test_who_reaches_what(source: Pod, destination: Pod, port: int, allowed: bool) -> None:
    assert admits(_policies(), source, destination, port) is allowed


def test_without_policies_everything_is_open() -> None:
    assert admits([], OTHER_POD, INFERENCE, SIDECAR_PORT)


def test_policies_apply_in_their_own_namespace_only() -> None:
    elsewhere = Pod("tenant-a", INFERENCE.labels)
    assert admits(_policies(), OTHER_POD, elsewhere, ENGINE_PORT)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        pytest.param({}, {"a": "1"}, True, id="empty"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="labels"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "2"}, False, id="labels-differ"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False, id="exists"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {},
            True,
            id="does-not-exist",
        ),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selects(selector, labels) is matches


TENANT_NS = "tenant-team-a"
TENANT_ENGINE = Pod(TENANT_NS, INFERENCE.labels)
TENANT_WORKLOAD = Pod(TENANT_NS, {"app": "notebook"})
TENANT_FAKE_GATEWAY = Pod(TENANT_NS, {"serving.hoist.dev/role": "gateway"})


@pytest.mark.parametrize(
    ("source", "port", "allowed"),
    [
        pytest.param(GATEWAY, ENGINE_PORT, True, id="hoist-gateway-to-engine"),
        pytest.param(CONTROLLER, SIDECAR_PORT, True, id="hoist-controller-to-sidecar"),
        pytest.param(GATEWAY, SIDECAR_PORT, False, id="hoist-gateway-to-sidecar"),
        pytest.param(TENANT_WORKLOAD, ENGINE_PORT, False, id="tenant-pod-to-engine"),
        pytest.param(TENANT_FAKE_GATEWAY, ENGINE_PORT, False, id="gateway-label-in-tenant-ns"),
        pytest.param(PROMETHEUS, ENGINE_METRICS_PORT, True, id="prometheus-to-metrics"),
        pytest.param(CLIENT, ENGINE_PORT, False, id="client-to-engine"),
    ],
)
def test_a_tenant_namespace_admits_hoist_like_its_own(
    source: Pod, port: int, allowed: bool
) -> None:
    """k8s/tenancy: dedicated engines in a tenant's namespace answer Hoist's gateway and
    controller from the `hoist` namespace, and no one else."""
    policies = [
        d for d in documents(K8S / "tenancy" / "team-a.yaml") if d["kind"] == "NetworkPolicy"
    ]
    assert all(p["metadata"]["namespace"] == TENANT_NS for p in policies)
    assert admits(policies, source, TENANT_ENGINE, port) is allowed
