"""What the embedded default's admin API reports (`GET /v1/state`).

The supervisor writes it; `hoist status` and the gateway's local discovery read it. It
plays the role that pods and custom resources play on Kubernetes.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from control_plane.api.common import Strict
from control_plane.api.lora_adapter import LoraAdapter
from control_plane.api.model import EngineKind, RoutingPolicy
from control_plane.api.tenant import Tenant


class ReplicaPhase(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    READY = "Ready"
    RESTARTING = "Restarting"
    FAILED = "Failed"
    STOPPED = "Stopped"


class ReplicaState(Strict):
    name: str
    """`<model>-<index>`, the counterpart of a pod name."""
    engine_url: str
    engine_metrics_url: str | None = None
    """Where the real engine's supervisor serves its own metrics (model load time)."""
    sidecar_url: str
    phase: ReplicaPhase
    ready: bool
    """The engine and its sidecar are both healthy: the replica may receive requests."""
    adapters: list[str] = Field(default_factory=list)
    """Adapters the sidecar reports loaded."""
    restarts: int = 0
    last_restart_reason: str | None = None
    """Why the engine or sidecar was last restarted: crashed, unresponsive, start_timeout."""
    engine_pid: int | None = None
    sidecar_pid: int | None = None
    message: str = ""


class ModelState(Strict):
    name: str
    namespace: str = "default"
    engine: EngineKind
    routing_policy: RoutingPolicy
    tenant: str | None = None
    desired_replicas: int
    max_loras: int
    replicas: list[ReplicaState] = Field(default_factory=list)


class GatewayState(Strict):
    url: str
    phase: ReplicaPhase
    pid: int | None = None


class EmbeddedState(Strict):
    models: list[ModelState] = Field(default_factory=list)
    adapters: list[LoraAdapter] = Field(default_factory=list)
    tenants: list[Tenant] = Field(default_factory=list)
    """Declared tenants (no keys: those stay in the gateway's key file)."""
    gateway: GatewayState | None = None
