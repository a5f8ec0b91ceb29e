from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest

from control_plane.api import Model
from control_plane.api.constants import (
    ENGINE_PORT,
    KV_EVENTS_PORT_OFFSET,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
)
from control_plane.model_manager.resources import (
    ANNOTATION_SPEC_HASH,
    PodConfig,
    deployment_for,
    service_for,
)
from control_plane.model_manager.status import invalid_model_status, model_status

CFG = PodConfig(
    engine_image="engine:1", sim_image="sim:1", sidecar_image="sidecar:1", drain_seconds=90
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def model(**spec: Any) -> Model:
    base: dict[str, Any] = {"source": "/models/llama", "replicas": 2}
    base.update(spec)
    return Model.model_validate({"metadata": {"name": "llama", "generation": 3}, "spec": base})


def containers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container of the pod template by name, init containers (native sidecars)
    included."""
    pod = doc["spec"]["template"]["spec"]
    return {c["name"]: c for c in [*pod.get("initContainers", []), *pod["containers"]]}


def test_sidecar_is_a_native_sidecar_by_default() -> None:
    """Kubernetes >= 1.29 (https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/):
    an init container with `restartPolicy: Always` starts before the engine and stops after it."""
    pod = deployment_for(model(), CFG, owner_uid="u")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["sidecar"]
    assert pod["initContainers"][0]["restartPolicy"] == "Always"
    assert [c["name"] for c in pod["containers"]] == ["engine"]


def test_sidecar_falls_back_to_a_regular_container_for_older_clusters() -> None:
    cfg = dataclasses.replace(CFG, native_sidecar=False)
    pod = deployment_for(model(), cfg, owner_uid="u")["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert [c["name"] for c in pod["containers"]] == ["engine", "sidecar"]
    assert "restartPolicy" not in pod["containers"][1]


@pytest.mark.parametrize("engine", ["vllm", "sim"])
def test_manifests_are_valid_kubernetes(engine: str) -> None:
    m = model(engine=engine, resources={"gpus": 2, "memory": "24Gi", "cpu": "4"})
    kubernetes_validate.validate(deployment_for(m, CFG, owner_uid="u-1"), "1.31.0", strict=True)
    kubernetes_validate.validate(service_for(m, owner_uid="u-1"), "1.31.0", strict=True)


def test_deployment_shape() -> None:
    doc = deployment_for(model(resources={"gpus": 1, "memory": "24Gi"}), CFG, owner_uid="u-1")
    assert doc["spec"]["replicas"] == 2
    owner = doc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Model", "u-1", True)
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_MODEL] == "llama"
    assert labels[LABEL_ROLE] == "inference"
    assert labels[LABEL_MANAGED_BY] == "hoist"
    pod = doc["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 90
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    c = containers(doc)
    engine, sidecar = c["engine"], c["sidecar"]
    assert engine["image"] == "engine:1"
    assert engine["command"][:3] == ["python", "-m", "data_plane.inference.engine_api"]
    model_json = engine["command"][engine["command"].index("--model-json") + 1]
    assert Model.model_validate_json(model_json).spec.resources.gpus == 1
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert engine["readinessProbe"]["httpGet"]["path"] == "/health"
    assert sidecar["command"][:3] == ["python", "-m", "data_plane.inference.sidecar_runtime"]
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # the adapter volume is shared
    assert {m["name"] for m in engine["volumeMounts"]} >= {"adapters"}
    assert {m["name"] for m in sidecar["volumeMounts"]} == {"adapters", "tmp"}
    assert "--metrics-port" in engine["command"]
    assert {p["name"] for p in engine["ports"]} == {"http", "engine-metrics"}
    for container in (engine, sidecar):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_sim_engine_command_and_image() -> None:
    engine = containers(deployment_for(model(engine="sim", maxModelLen=512), CFG, owner_uid="u"))[
        "engine"
    ]
    assert engine["image"] == "sim:1"
    assert engine["command"][:3] == ["python", "-m", "data_plane.inference.simulator"]
    assert engine["command"][engine["command"].index("--max-model-len") + 1] == "512"
    assert "nvidia.com/gpu" not in engine.get("resources", {}).get("limits", {})


def test_a_precise_prefix_sim_pod_publishes_kv_events_where_the_gateway_looks() -> None:
    doc = deployment_for(model(engine="sim", routingPolicy="precise-prefix"), CFG, owner_uid="u")
    command = containers(doc)["engine"]["command"]
    config = json.loads(command[command.index("--kv-events-config") + 1])
    assert config["endpoint"] == f"tcp://*:{ENGINE_PORT + KV_EVENTS_PORT_OFFSET}"
    assert config["enable_kv_cache_events"] is True
    plain = containers(deployment_for(model(engine="sim"), CFG, owner_uid="u"))
    assert "--kv-events-config" not in plain["engine"]["command"]


def test_spec_change_changes_the_pod_template() -> None:
    a = deployment_for(model(), CFG, owner_uid="u")
    b = deployment_for(model(engineArgs=["--enable-prefix-caching"]), CFG, owner_uid="u")
    ann = ANNOTATION_SPEC_HASH
    assert (
        a["spec"]["template"]["metadata"]["annotations"][ann]
        != b["spec"]["template"]["metadata"]["annotations"][ann]
    )
    assert a["spec"]["template"] != b["spec"]["template"]


def test_autoscaler_decision_is_followed_within_bounds() -> None:
    m = Model.model_validate(
        {
            "metadata": {"name": "llama"},
            "spec": {
                "source": "/m",
                "replicas": 1,
                "maxReplicas": 3,
                "autoscaling": {"enabled": True},
            },
            "status": {"desiredReplicas": 7},
        }
    )
    assert deployment_for(m, CFG, owner_uid="u")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("deployment", "phase", "reason"),
    [
        pytest.param(None, "Pending", "DeploymentMissing", id="no-deployment"),
        pytest.param(
            {"status": {"replicas": 2, "updatedReplicas": 2}},
            "Loading",
            "ReplicasStarting",
            id="loading",
        ),
        pytest.param(
            {"status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2}},
            "Degraded",
            "ReplicasUnavailable",
            id="degraded",
        ),
        pytest.param(
            {"status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2}},
            "Ready",
            "ReplicasReady",
            id="ready",
        ),
        pytest.param(
            {
                "status": {
                    "conditions": [
                        {
                            "type": "ReplicaFailure",
                            "status": "True",
                            "reason": "FailedCreate",
                            "message": "quota",
                        }
                    ]
                }
            },
            "Failed",
            "FailedCreate",
            id="replica-failure",
        ),
    ],
)
def test_status_mirrors_the_deployment(
    deployment: dict[str, Any] | None, phase: str, reason: str
) -> None:
    status = model_status(model(), deployment, now=T0)
    assert status.phase == phase
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert ready.reason == reason
    assert status.observed_generation == 3
    assert status.desired_replicas == 2


def test_scaled_to_zero_and_invalid() -> None:
    status = model_status(model(replicas=0), {"status": {}}, now=T0)
    assert status.phase == "ScaledToZero"
    bad = invalid_model_status(None, "spec.replicas: too many", 4, now=T0)
    assert bad.phase == "Failed"
    assert next(c for c in bad.conditions if c.type == "SpecValid").status == "False"


def test_kv_event_routing_says_whether_precise_prefix_has_events() -> None:
    sim = model_status(model(engine="sim", routingPolicy="precise-prefix"), None, now=T0)
    [published] = [c for c in sim.conditions if c.type == "KvEventRouting"]
    assert (published.status, published.reason) == ("True", "EventsPublished")

    real = model(engine="vllm", routingPolicy="precise-prefix")
    status = model_status(real, None, now=T0)
    [missing] = [c for c in status.conditions if c.type == "KvEventRouting"]
    assert (missing.status, missing.reason) == ("False", "NoEvents")
    assert "engine vllm publishes none" in missing.message
    assert "routed as with routingPolicy default" in missing.message

    # back to another policy: the condition goes with it
    later = model(engine="vllm").model_copy(update={"status": status})
    assert all(c.type != "KvEventRouting" for c in model_status(later, None, now=T0).conditions)
    assert all(c.type != "KvEventRouting" for c in model_status(model(), None, now=T0).conditions)


def test_engine_options_reach_the_engine_command_line() -> None:
    """The Deployment carries the whole spec to engine_api, which renders vLLM's flags."""
    from data_plane.inference.engine_api.args import build_launch

    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    m = model(
        toolCallParser="hermes",
        reasoningParser="qwen3",
        chatTemplate=template,
        engineArgs=["--tool-strict-level", "parameter"],
    )
    engine = containers(deployment_for(m, CFG, owner_uid="u"))["engine"]
    carried = Model.model_validate_json(
        engine["command"][engine["command"].index("--model-json") + 1]
    )
    assert carried.spec == m.spec
    argv = build_launch(carried.spec, model_path="/m", served_name="llama", host="h", port=1).argv
    assert argv[argv.index("--tool-call-parser") + 1] == "hermes"
    assert "--enable-auto-tool-choice" in argv
    assert argv[argv.index("--reasoning-parser") + 1] == "qwen3"
    assert argv[argv.index("--chat-template") + 1] == template
    assert argv[-2:] == ["--tool-strict-level", "parameter"]
    embed = model(task="embed")
    engine = containers(deployment_for(embed, CFG, owner_uid="u"))["engine"]
    carried = Model.model_validate_json(
        engine["command"][engine["command"].index("--model-json") + 1]
    )
    argv = build_launch(carried.spec, model_path="/m", served_name="llama", host="h", port=1).argv
    assert argv[argv.index("--runner") + 1] == "pooling"


@pytest.mark.parametrize("engine", ["vllm", "sim"])
def test_the_operators_otel_variables_reach_engine_and_sidecar(engine: str) -> None:
    otel = (("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.obs:4318"),)
    doc = deployment_for(
        model(engine=engine), dataclasses.replace(CFG, otel_env=otel), owner_uid="u"
    )
    kubernetes_validate.validate(doc, "1.31.0", strict=True)
    for container in containers(doc).values():
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.obs:4318"
    plain = containers(deployment_for(model(engine=engine), CFG, owner_uid="u"))
    assert not any(e["name"].startswith("OTEL_") for c in plain.values() for e in c["env"])


def test_a_simulated_embedding_model_runs_the_simulators_pooling_runner() -> None:
    embed = containers(deployment_for(model(engine="sim", task="embed"), CFG, owner_uid="u"))
    command = embed["engine"]["command"]
    assert command[command.index("--runner") + 1] == "pooling"
    chat = containers(deployment_for(model(engine="sim"), CFG, owner_uid="u"))
    assert "--runner" not in chat["engine"]["command"]
