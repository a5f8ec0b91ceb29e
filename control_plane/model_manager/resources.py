"""A `Model` as Kubernetes objects: its Deployment and Service (pure).

Every inference pod holds two containers sharing an `emptyDir` for adapters (on Kubernetes
>= 1.29 the sidecar is a native sidecar: an init container with `restartPolicy: Always`,
started before the engine and stopped after it; `PodConfig.native_sidecar=False` makes it
a second regular container for older clusters):
- `engine`: `python -m data_plane.inference.engine_api --model-json ...` (vLLM; its own
  `/metrics` on `engine-metrics` 8001), or the simulator for `engine: sim`; port `http`
  (8000), probes on `/health`; weights in an `emptyDir` at /models;
- `sidecar`: `python -m data_plane.inference.sidecar_runtime ...`; port `sidecar` (8090),
  probes on `/readyz` and `/healthz`; it writes adapters into the shared volume and loads
  them into the engine over localhost.

Pods run as the images' user (10001) with read-only root filesystems, no privilege
escalation, all capabilities dropped and the runtime's default seccomp profile; the pod
template matches the reference pod in k8s/llm-inference-deploy.yaml
(tests/unit/k8s/test_components_agree.py compares them). Rolling updates add a pod
before removing one, so a spec change rolls out without losing capacity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from control_plane.api import EngineKind, Model
from control_plane.api.constants import (
    API_VERSION,
    ENGINE_PORT,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
    MANAGED_BY,
    MODEL_KIND,
    SIDECAR_PORT,
)
from control_plane.api.simulator_args import simulator_argv

Json = dict[str, Any]

ROLE_INFERENCE = "inference"
HOIST_HOME = "/var/lib/hoist"
ADAPTER_DIR = f"{HOIST_HOME}/adapters"
MODEL_DIR = "/models"
ENGINE_METRICS_PORT = 8001
IMAGE_UID = 10001
"""`USER` of Hoist's images, owner of their writable folders."""
ANNOTATION_SPEC_HASH = "serving.hoist.dev/spec-hash"
PRESTOP_SECONDS = 10
"""The engine's preStop sleep: the gateways (they watch pods and drop a terminating one at
once) and the Service's endpoints stop sending it work before it gets SIGTERM."""
EXIT_MARGIN_SECONDS = 5
"""Of the grace period, kept for engine_api to kill vLLM's group and exit after its own
stop grace: the kubelet's SIGKILL never lands on a drain still in progress."""
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class PodConfig:
    """What the operator's settings say about inference pods."""

    engine_image: str
    sim_image: str
    sidecar_image: str
    image_pull_policy: str = "IfNotPresent"
    drain_seconds: int = 120
    engine_startup_seconds: int = 1800
    adapter_volume_size: str = "8Gi"
    model_volume_size: str = "64Gi"
    service_account: str | None = None
    log_level: str = "INFO"
    sidecar_env: tuple[tuple[str, str], ...] = ()
    """More environment of the sidecar container (the adapter source policy)."""
    otel_env: tuple[tuple[str, str], ...] = ()
    """The operator's `OTEL_*` variables (`control_plane.api.tracing.otel_environment`),
    given to the engine and the sidecar: they trace where the operator does, and the
    engine launcher starts vLLM with its own OTLP export (docs/tracing.md)."""
    native_sidecar: bool = True
    """The sidecar as a native sidecar (init container, `restartPolicy: Always`; Kubernetes
    >= 1.29): it is up before the engine starts and outlives the engine on shutdown, so
    adapter loads and the drain never meet a missing sidecar. False: a regular container."""


def labels_of(model: Model) -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_MODEL: model.metadata.name,
        LABEL_ROLE: ROLE_INFERENCE,
    }


def selector_of(model: Model) -> dict[str, str]:
    return {LABEL_MODEL: model.metadata.name, LABEL_ROLE: ROLE_INFERENCE}


def owner_reference(model: Model, uid: str) -> Json:
    return {
        "apiVersion": API_VERSION,
        "kind": MODEL_KIND,
        "name": model.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def desired_replicas(model: Model) -> int:
    """The spec's replicas, or what the autoscaler decided (within the bounds)."""
    spec = model.spec
    if spec.autoscaling.enabled and model.status and model.status.desired_replicas is not None:
        return max(spec.min_replicas, min(spec.max_replicas, model.status.desired_replicas))
    return spec.replicas


def spec_hash(model: Model) -> str:
    doc = model.spec.model_dump(mode="json", by_alias=True)
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def model_json(model: Model) -> str:
    """The whole Model document (camelCase) as the engine's `--model-json` wants it."""
    doc = {
        "apiVersion": model.api_version,
        "kind": model.kind,
        "metadata": {"name": model.metadata.name, "namespace": model.metadata.namespace},
        "spec": model.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return orjson.dumps(doc).decode()


def _engine_command(model: Model) -> list[str]:
    if model.spec.engine is EngineKind.SIM:
        return simulator_argv(model, python="python", host="0.0.0.0", port=ENGINE_PORT)
    return [
        "python", "-m", "data_plane.inference.engine_api",
        "--model-json", model_json(model),
        "--host", "0.0.0.0", "--port", str(ENGINE_PORT),
        "--metrics-port", str(ENGINE_METRICS_PORT),
    ]  # fmt: skip


def _engine_resources(model: Model) -> Json:
    res = model.spec.resources
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.cpu:
        requests["cpu"] = res.cpu
    if res.memory:
        requests["memory"] = limits["memory"] = res.memory
    if res.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(res.gpus)
    out: Json = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


_CONTAINER_SECURITY: Json = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _probe(path: str, port: str | int, *, period: int, failures: int, timeout: int = 5) -> Json:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def engine_stop_grace_seconds(cfg: PodConfig) -> int:
    """How long vLLM may finish its in-flight requests after SIGTERM: the grace period less
    the preStop sleep and the exit margin (ENGINE_STOP_GRACE_SECONDS)."""
    return max(1, cfg.drain_seconds - PRESTOP_SECONDS - EXIT_MARGIN_SECONDS)


def _engine_container(model: Model, cfg: PodConfig) -> Json:
    sim = model.spec.engine is EngineKind.SIM
    ports = [{"name": "http", "containerPort": ENGINE_PORT, "protocol": "TCP"}]
    if not sim:
        ports.append(
            {"name": "engine-metrics", "containerPort": ENGINE_METRICS_PORT, "protocol": "TCP"}
        )
    return {
        "name": "engine",
        "image": cfg.sim_image if sim else cfg.engine_image,
        "imagePullPolicy": cfg.image_pull_policy,
        "command": _engine_command(model),
        "env": [
            {"name": "MODEL_REPOSITORY", "value": MODEL_DIR},
            {"name": "HOIST_HOME", "value": HOIST_HOME},
            {"name": "HF_HOME", "value": f"{HOIST_HOME}/hf"},
            {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"},
            {"name": "LOG_LEVEL", "value": cfg.log_level},
            {"name": "ENGINE_STOP_GRACE_SECONDS", "value": str(engine_stop_grace_seconds(cfg))},
            *({"name": name, "value": value} for name, value in cfg.otel_env),
        ],
        "ports": ports,
        "resources": _engine_resources(model),
        # The load (download + weights) is guarded by the startupProbe; liveness starts after.
        "startupProbe": _probe(
            "/health", "http", period=10, failures=max(1, cfg.engine_startup_seconds // 10)
        ),
        "readinessProbe": _probe("/health", "http", period=5, failures=2, timeout=3),
        # Through the sidecar (a number: a named port resolves in the probed container):
        # it fails only for an engine that answered and then hung past the sidecar's bound.
        # 3 x 10 s of failures: a sidecar that crashed and is restarted (back-off 10 s) in
        # that time never costs the engine its life.
        "livenessProbe": _probe("/livez/engine", SIDECAR_PORT, period=10, failures=3, timeout=3),
        # Let the gateways and the endpoints drop the pod before the engine gets SIGTERM.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_DIR},
            {"name": "home", "mountPath": HOIST_HOME},
            {"name": "adapters", "mountPath": ADAPTER_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
            {"name": "shm", "mountPath": "/dev/shm"},  # noqa: S108 - shared memory for vLLM
        ],
        "securityContext": _CONTAINER_SECURITY,
    }


def _sidecar_container(cfg: PodConfig) -> Json:
    return {
        "name": "sidecar",
        "image": cfg.sidecar_image,
        "imagePullPolicy": cfg.image_pull_policy,
        "command": [
            "python",
            "-m",
            "data_plane.inference.sidecar_runtime",
            "--host",
            "0.0.0.0",
            "--port",
            str(SIDECAR_PORT),
            "--engine-url",
            f"http://127.0.0.1:{ENGINE_PORT}",
            "--adapter-dir",
            ADAPTER_DIR,
        ],
        "env": [
            {"name": "LOG_LEVEL", "value": cfg.log_level},
            *({"name": name, "value": value} for name, value in cfg.sidecar_env),
            *({"name": name, "value": value} for name, value in cfg.otel_env),
        ],
        "ports": [{"name": "sidecar", "containerPort": SIDECAR_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "readinessProbe": _probe("/readyz", "sidecar", period=5, failures=3),
        "livenessProbe": _probe("/healthz", "sidecar", period=15, failures=4),
        "volumeMounts": [
            {"name": "adapters", "mountPath": ADAPTER_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
        ],
        "securityContext": _CONTAINER_SECURITY,
    }


def deployment_for(model: Model, cfg: PodConfig, *, owner_uid: str) -> Json:
    labels = labels_of(model)
    volumes: list[Json] = [
        {"name": "models", "emptyDir": {"sizeLimit": cfg.model_volume_size}},
        {"name": "adapters", "emptyDir": {"sizeLimit": cfg.adapter_volume_size}},
        {"name": "home", "emptyDir": {"sizeLimit": "16Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
    ]
    pod_spec: Json = {
        # Inference pods never talk to the API server.
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": cfg.drain_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_UID,
            "runAsGroup": IMAGE_UID,
            "fsGroup": IMAGE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_engine_container(model, cfg)],
        "volumes": volumes,
    }
    sidecar = _sidecar_container(cfg)
    if cfg.native_sidecar:
        pod_spec["initContainers"] = [{**sidecar, "restartPolicy": "Always"}]
    else:
        pod_spec["containers"].append(sidecar)
    if cfg.service_account:
        pod_spec["serviceAccountName"] = cfg.service_account
    if model.spec.resources.gpus:
        pod_spec["tolerations"] = [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": model.metadata.name,
            "namespace": model.metadata.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(model, owner_uid)],
        },
        "spec": {
            "replicas": desired_replicas(model),
            "selector": {"matchLabels": selector_of(model)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "progressDeadlineSeconds": cfg.engine_startup_seconds + 300,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        ANNOTATION_SPEC_HASH: spec_hash(model),
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(SIDECAR_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def service_for(model: Model, *, owner_uid: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": model.metadata.name,
            "namespace": model.metadata.namespace,
            "labels": labels_of(model),
            "ownerReferences": [owner_reference(model, owner_uid)],
        },
        "spec": {
            # Headless: the gateway routes to the pods one by one, not through a VIP.
            "clusterIP": "None",
            "selector": selector_of(model),
            "ports": [
                {"name": "http", "port": ENGINE_PORT, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "sidecar",
                    "port": SIDECAR_PORT,
                    "targetPort": "sidecar",
                    "protocol": "TCP",
                },
            ],
        },
    }
