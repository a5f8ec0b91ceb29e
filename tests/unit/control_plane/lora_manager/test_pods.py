from __future__ import annotations

from typing import Any

import pytest

from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, LABEL_MODEL
from control_plane.lora_manager.pods import pod_ref


def pod(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "metadata": {"name": "m-0", "labels": {LABEL_MODEL: "m"}},
        "spec": {
            "containers": [
                {"name": "sidecar", "ports": [{"name": "sidecar", "containerPort": 9000}]}
            ]
        },
        "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    for key, value in overrides.items():
        doc[key] = value
    return doc


def test_ready_pod() -> None:
    ref = pod_ref(pod())
    assert ref is not None
    assert (ref.name, ref.model, ref.ready, ref.sidecar_url) == (
        "m-0",
        "m",
        True,
        "http://10.0.0.7:9000",
    )
    assert ref.loaded_annotation is None


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(pod(status={"conditions": []}), id="no-ip"),
        pytest.param(pod(metadata={"name": "x", "labels": {}}), id="no-model-label"),
    ],
)
def test_unusable_pods(doc: dict[str, Any]) -> None:
    assert pod_ref(doc) is None


def test_terminating_or_unready_pod_is_not_ready_and_defaults_apply() -> None:
    doc = pod(
        metadata={
            "name": "m-1",
            "labels": {LABEL_MODEL: "m"},
            "deletionTimestamp": "now",
            "annotations": {ANNOTATION_LOADED_ADAPTERS: "b, a"},
        },
        spec={"containers": [{"name": "engine"}]},
        status={"podIP": "fd00::1", "conditions": [{"type": "Ready", "status": "True"}]},
    )
    ref = pod_ref(doc)
    assert ref is not None
    assert not ref.ready
    assert ref.sidecar_url == "http://[fd00::1]:8090"
    assert ref.loaded_annotation == ("a", "b")


def test_native_sidecar_port_is_read_from_the_init_containers() -> None:
    sidecar = {"name": "sidecar", "restartPolicy": "Always",
               "ports": [{"name": "sidecar", "containerPort": 9100}]}  # fmt: skip
    ref = pod_ref(pod(spec={"initContainers": [sidecar], "containers": [{"name": "engine"}]}))
    assert ref is not None
    assert ref.sidecar_url == "http://10.0.0.7:9100"
