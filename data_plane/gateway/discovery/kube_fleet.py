"""Models, their pods and LoraAdapters (JSON, as the API serves them) as one fleet (pure).

A pod is routable when it runs, is Ready and is not terminating; the adapters loaded on it
come from its `serving.hoist.dev/loaded-adapters` annotation, which the sidecar keeps
current. A model id is global to the OpenAI API: `claim` keeps the first resource of each
name (earlier namespace, earlier kind first).
"""

from __future__ import annotations

from typing import Any

import orjson

from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, LABEL_MODEL
from data_plane.gateway.discovery.state import adapter_info
from data_plane.gateway.fleet import FleetSnapshot, ModelInfo, ReplicaInfo


def loaded_adapters(annotation: str | None) -> frozenset[str]:
    """The annotation's adapters: a JSON list or a comma-separated string."""
    if not annotation:
        return frozenset()
    text = annotation.strip()
    if text.startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            return frozenset()
        return frozenset(
            i if isinstance(i, str) else str(i.get("name"))
            for i in items
            if isinstance(i, str) or (isinstance(i, dict) and i.get("name"))
        )
    return frozenset(a.strip() for a in text.split(",") if a.strip())


def pod_replica(pod: dict[str, Any], engine_port: int) -> ReplicaInfo | None:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if not ip:
        return None
    ready = (
        status.get("phase") == "Running"
        and not meta.get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
    )
    port = engine_port
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") in ("http", "engine") and isinstance(p.get("containerPort"), int):
                port = p["containerPort"]
    host = f"[{ip}]" if ":" in ip else ip
    return ReplicaInfo(
        name=str(meta.get("name")),
        url=f"http://{host}:{port}",
        ready=ready,
        adapters=loaded_adapters((meta.get("annotations") or {}).get(ANNOTATION_LOADED_ADAPTERS)),
    )


def fleet_from_resources(
    models: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    adapters: list[dict[str, Any]],
    engine_port: int,
) -> FleetSnapshot:
    by_model: dict[str, list[ReplicaInfo]] = {}
    for pod in pods:
        model = ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_MODEL)
        replica = pod_replica(pod, engine_port)
        if model and replica is not None:
            by_model.setdefault(model, []).append(replica)
    infos = []
    for m in models:
        name = (m.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            continue
        spec = m.get("spec") or {}
        lora = spec.get("lora") or {}
        max_loras = lora.get("maxLoras", 4)
        infos.append(
            ModelInfo(
                name=name,
                replicas=tuple(sorted(by_model.get(name, []), key=lambda r: r.name)),
                policy=str(spec.get("routingPolicy") or "default"),
                max_loras=max_loras if isinstance(max_loras, int) and max_loras > 0 else 4,
                tenant=spec.get("tenant") if isinstance(spec.get("tenant"), str) else None,
            )
        )
    found = (adapter_info(a) for a in adapters)
    return FleetSnapshot(models=tuple(infos), adapters=tuple(a for a in found if a is not None))


def claim(items: list[dict[str, Any]], taken: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The resources whose names are still free (added to `taken`), and the names refused."""
    claimed, refused = [], []
    for item in items:
        name = resource_name(item)
        if name in taken:
            refused.append(name)
            continue
        taken.add(name)
        claimed.append(item)
    return claimed, refused


def resource_name(resource: dict[str, Any]) -> str:
    return str((resource.get("metadata") or {}).get("name"))


def model_label(pod: dict[str, Any]) -> Any:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_MODEL)
