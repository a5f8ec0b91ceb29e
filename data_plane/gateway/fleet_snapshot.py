"""What discovery reports: the fleet as declared and observed at one moment (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    name: str
    url: str
    """Base URL of the engine, without a trailing slash."""
    ready: bool = True
    adapters: frozenset[str] = frozenset()
    """Adapters loaded on this replica's engine."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    replicas: tuple[ReplicaInfo, ...] = ()
    policy: str = "default"
    max_loras: int = 4
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    name: str
    base_model: str
    phase: str | None = None
    tenant: str | None = None
    """The tenant that owns the adapter (tenancy: only it may see and use it)."""


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    models: tuple[ModelInfo, ...] = ()
    adapters: tuple[AdapterInfo, ...] = ()
    """Declared adapters (loaded or not); adapters only seen on replicas count too."""
