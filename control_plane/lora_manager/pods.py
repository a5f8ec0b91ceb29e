"""Inference pods as the API server lists them -> `PodRef`s (pure)."""

from __future__ import annotations

from typing import Any

from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, LABEL_MODEL, SIDECAR_PORT
from control_plane.lora_manager.placement import PodRef


def _sidecar_port(pod: dict[str, Any]) -> int:
    spec = pod.get("spec") or {}
    # A native sidecar (Kubernetes >= 1.29) is listed among the init containers.
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") != "sidecar":
            continue
        for port in container.get("ports") or []:
            if port.get("name") == "sidecar" and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return SIDECAR_PORT


def _ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_ref(pod: dict[str, Any]) -> PodRef | None:
    """The pod's sidecar address, or None for a pod without an IP or a model label."""
    meta = pod.get("metadata") or {}
    model = (meta.get("labels") or {}).get(LABEL_MODEL)
    ip = (pod.get("status") or {}).get("podIP")
    if not model or not ip or not meta.get("name"):
        return None
    host = f"[{ip}]" if ":" in ip else ip
    annotation = (meta.get("annotations") or {}).get(ANNOTATION_LOADED_ADAPTERS)
    loaded = (
        tuple(sorted(a.strip() for a in annotation.split(",") if a.strip()))
        if isinstance(annotation, str)
        else None
    )
    return PodRef(
        name=meta["name"],
        model=model,
        ready=_ready(pod),
        sidecar_url=f"http://{host}:{_sidecar_port(pod)}",
        loaded_annotation=loaded,
    )
