"""Turn the admin API's `/v1/state` (or a static file of that shape) into a snapshot (pure).

Lenient on purpose: unknown fields are ignored, so the supervisor may add to its state
without breaking the gateway; what the gateway needs is checked and refused clearly.
"""

from __future__ import annotations

from typing import Any

from data_plane.gateway.fleet import AdapterInfo, FleetSnapshot, ModelInfo, ReplicaInfo


class StateError(ValueError):
    pass


def parse_state(doc: Any) -> FleetSnapshot:
    if not isinstance(doc, dict):
        raise StateError("the state must be an object with `models`")
    models = []
    for m in _list(doc, "models"):
        name = _str(m, "name")
        replicas = []
        for r in _list(m, "replicas"):
            url = r.get("engineUrl") or r.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise StateError(f"replica of {name}: `engineUrl` must be an http(s) URL")
            replicas.append(
                ReplicaInfo(
                    name=str(r.get("name") or url),
                    url=url.rstrip("/"),
                    ready=r.get("ready", True) is True,
                    adapters=frozenset(a for a in r.get("adapters") or () if isinstance(a, str)),
                )
            )
        max_loras = m.get("maxLoras", 4)
        models.append(
            ModelInfo(
                name=name,
                replicas=tuple(replicas),
                policy=str(m.get("routingPolicy") or "default"),
                max_loras=max_loras if isinstance(max_loras, int) and max_loras > 0 else 4,
                tenant=m.get("tenant") if isinstance(m.get("tenant"), str) else None,
            )
        )
    adapters = []
    for a in _list(doc, "adapters"):
        adapter = adapter_info(a)
        if adapter is not None:
            adapters.append(adapter)
    return FleetSnapshot(models=tuple(models), adapters=tuple(adapters))


def adapter_info(doc: Any) -> AdapterInfo | None:
    """The name, base model and phase of a LoraAdapter document; None if it has none."""
    if not isinstance(doc, dict):
        return None
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    status = doc.get("status") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    base = spec.get("baseModel") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not isinstance(base, str):
        return None
    phase = status.get("phase") if isinstance(status, dict) else None
    return AdapterInfo(name=name, base_model=base, phase=phase if isinstance(phase, str) else None)


def _list(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise StateError(f"`{key}` must be a list of objects")
    return value


def _str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise StateError(f"`{key}` must be a non-empty string")
    return value


def parse_upstreams(entries: list[str]) -> FleetSnapshot:
    """`MODEL=URL[,URL...]` entries; a URL may carry its adapters: `URL#a+b`."""
    replicas: dict[str, list[ReplicaInfo]] = {}
    for entry in entries:
        model, sep, urls = entry.partition("=")
        if not sep or not model or not urls:
            raise StateError(f"upstream {entry!r}: expected MODEL=URL[,URL...]")
        for url in urls.split(","):
            base, _, adapters = url.partition("#")
            if not base.startswith(("http://", "https://")):
                raise StateError(f"upstream {entry!r}: {base!r} is not an http(s) URL")
            group = replicas.setdefault(model, [])
            group.append(
                ReplicaInfo(
                    name=f"{model}-{len(group)}",
                    url=base.rstrip("/"),
                    adapters=frozenset(a for a in adapters.split("+") if a),
                )
            )
    return FleetSnapshot(
        models=tuple(ModelInfo(name=m, replicas=tuple(rs)) for m, rs in replicas.items())
    )


def merge(a: FleetSnapshot, b: FleetSnapshot) -> FleetSnapshot:
    return FleetSnapshot(models=a.models + b.models, adapters=a.adapters + b.adapters)
