"""The manifests start each component the way that component reads its settings.

The flags and environment variables in k8s/ go through each component's own settings
parser (their classes refuse unknown `HOIST_*_` variables), and the reference inference pod
is compared with the one the controller really renders for the same Model. A component not
yet in the repository is skipped, naming the issue that delivers it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from control_plane.api import Model
from control_plane.api.constants import ENGINE_PORT, GATEWAY_PORT, SIDECAR_PORT
from tests.support.manifests import K8S, ROOT, documents

BASE = K8S / "base"
NAMESPACE = "hoist"
IMAGE_UID = 10001
"""`USER` of every image in docker/ (tests/unit/docker checks they agree)."""


def _require(module: str, issue: str) -> Any:
    base = ROOT.joinpath(*module.split("."))
    if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
        pytest.skip(f"{module} is not in the repository yet ({issue})")
    return importlib.import_module(module)


def _deployment(path: Path, name: str) -> dict[str, Any]:
    return next(
        d for d in documents(path) if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )


def _all_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers (the native sidecar) and containers, in the order they start."""
    pod = deployment["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = [*pod.get("initContainers", []), *pod["containers"]]
    return found


def _container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers = _all_containers(deployment)
    container: dict[str, Any] = next(c for c in containers if c["name"] == name)
    return container


def _set_env(monkeypatch: pytest.MonkeyPatch, container: dict[str, Any]) -> None:
    for var in container.get("env", []):
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
        elif var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace":
            monkeypatch.setenv(var["name"], NAMESPACE)


def test_gateway_accepts_its_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    main = _require("data_plane.gateway.__main__", "issue 4, gateway")
    container = _container(_deployment(BASE / "02-gateway-deploy.yaml", "hoist-gateway"), "gateway")
    _set_env(monkeypatch, container)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")  # what the kubelet sets in a pod
    settings = main.parse_settings(container["args"])
    assert settings.discovery.value == "kubernetes"
    assert settings.port == GATEWAY_PORT
    assert settings.kube_namespace == NAMESPACE
    assert settings.engine_port == ENGINE_PORT


def test_operator_accepts_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings_module = _require("control_plane.operator.settings", "issue 6, operators")
    deployment = _deployment(BASE / "03-controller-deploy.yaml", "hoist-controller")
    container = _container(deployment, "controller")
    assert "args" not in container, "the operator takes no arguments, only HOIST_OPERATOR_*"
    _set_env(monkeypatch, container)
    settings = settings_module.OperatorSettings()
    assert settings.namespaces == [NAMESPACE]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert settings.metrics_port == ports["metrics"]
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"


def test_sidecar_accepts_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    main = _require("data_plane.inference.sidecar_runtime.__main__", "issue 5, inference pod")
    container = _container(
        _deployment(K8S / "llm-inference-deploy.yaml", "llama-3-8b-instruct"), "sidecar"
    )
    _set_env(monkeypatch, container)
    settings = main.parse(container["args"])
    assert settings.port == SIDECAR_PORT
    assert str(settings.adapter_dir) == "/var/lib/hoist/adapters"


def test_engine_api_accepts_its_flags() -> None:
    main = _require("data_plane.inference.engine_api.__main__", "issue 5, inference pod")
    container = _container(
        _deployment(K8S / "llm-inference-deploy.yaml", "llama-3-8b-instruct"), "engine"
    )
    args = main._parser().parse_args(container["args"])
    assert args.port == ENGINE_PORT
    assert main.load_model(args.model_json).metadata.name == "llama-3-8b-instruct"


def test_reference_pod_matches_what_the_controller_renders() -> None:
    resources = _require("control_plane.model_manager.resources", "issue 6, operators")
    model = Model.model_validate(documents(K8S / "examples" / "model-gpu.yaml")[0])
    config = resources.PodConfig(
        engine_image="engine:test", sim_image="sim:test", sidecar_image="sidecar:test"
    )
    rendered = resources.deployment_for(model, config, owner_uid="0")
    reference = _deployment(K8S / "llm-inference-deploy.yaml", model.metadata.name)

    def labels(d: dict[str, Any]) -> dict[str, str]:
        found: dict[str, str] = d["spec"]["template"]["metadata"]["labels"]
        return found

    assert reference["spec"]["selector"] == rendered["spec"]["selector"]
    assert rendered["spec"]["selector"]["matchLabels"].items() <= labels(rendered).items()
    for key in rendered["spec"]["selector"]["matchLabels"]:
        assert labels(reference)[key] == labels(rendered)[key]

    def containers(d: dict[str, Any]) -> list[str]:
        return [c["name"] for c in _all_containers(d)]

    def init_containers(d: dict[str, Any]) -> list[tuple[str, str | None]]:
        pod = d["spec"]["template"]["spec"]
        return [(c["name"], c.get("restartPolicy")) for c in pod.get("initContainers", [])]

    assert containers(reference) == containers(rendered)
    assert init_containers(reference) == init_containers(rendered) == [("sidecar", "Always")]
    for name in containers(rendered):
        mine, theirs = _container(reference, name), _container(rendered, name)
        their_ports = {p["name"]: p["containerPort"] for p in theirs["ports"]}
        my_ports = {p["name"]: p["containerPort"] for p in mine["ports"]}
        assert their_ports.items() <= my_ports.items(), f"{name}: {their_ports} vs {my_ports}"
        their_mounts = {m["mountPath"] for m in theirs.get("volumeMounts", [])}
        assert their_mounts <= {m["mountPath"] for m in mine["volumeMounts"]}
    sidecar = _container(rendered, "sidecar")["command"]
    assert sidecar[3:] == _container(reference, "sidecar")["args"]


def test_controller_runs_inference_pods_as_the_images_user() -> None:
    resources = _require("control_plane.model_manager.resources", "issue 6, operators")
    model = Model.model_validate(documents(K8S / "examples" / "model-gpu.yaml")[0])
    config = resources.PodConfig(engine_image="e", sim_image="s", sidecar_image="c")
    rendered = resources.deployment_for(model, config, owner_uid="0")
    # The images' USER owns their writable folders (HOME, HF_HOME, /models): another uid
    # cannot write the engine's caches or downloads.
    security = rendered["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsUser"] == IMAGE_UID
