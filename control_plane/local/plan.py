"""Which processes the embedded default runs for a set of declarations (pure).

Per `Model` replica: an engine (the real vLLM through `engine_api`, or the simulator) and a
sidecar beside it; then one gateway. Ports are dealt out deterministically so that the same
declarations always give the same addresses.

The gateway gets no `--workers`: it runs one worker process per available core on its
port (SO_REUSEPORT), or one while the declared Tenants have quotas and no Redis shares
their counters (`data_plane/gateway/worker_count.py`); `HOIST_GATEWAY_WORKERS` in
`hoist up`'s environment, passed on to it, sets the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from control_plane.api import EngineKind, Model
from control_plane.api.constants import KV_EVENTS_PORT_OFFSET
from control_plane.api.simulator_args import publishes_kv_events, simulator_argv


class Role(StrEnum):
    ENGINE = "engine"
    SIDECAR = "sidecar"
    GATEWAY = "gateway"


@dataclass(frozen=True)
class ProcessSpec:
    """One process the supervisor keeps running."""

    name: str
    role: Role
    argv: tuple[str, ...]
    port: int
    health_path: str
    ready_timeout_s: float
    model: str | None = None
    replica: int | None = None
    metrics_port: int | None = None
    """A second port the process serves its own /metrics on (the real engine's engine_api)."""
    kv_events_port: int | None = None
    """Where the engine publishes its KV-cache events (ZMQ; `precise-prefix` simulators)."""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class PlanSettings:
    python: str
    host: str
    gateway_port: int
    admin_port: int
    engine_base_port: int
    sidecar_base_port: int
    engine_metrics_base_port: int
    adapters_dir: str
    engine_ready_timeout_s: float
    ready_timeout_s: float
    max_autoscaled_replicas: int = 4
    """Replica slots (ports) kept for an autoscaled model, within its maxReplicas."""


@dataclass(frozen=True)
class ReplicaPlan:
    model: str
    index: int
    engine: ProcessSpec
    sidecar: ProcessSpec

    @property
    def name(self) -> str:
        return f"{self.model}-{self.index}"


@dataclass(frozen=True)
class Plan:
    replicas: tuple[ReplicaPlan, ...]
    gateway: ProcessSpec

    @property
    def processes(self) -> tuple[ProcessSpec, ...]:
        per_replica = tuple(p for r in self.replicas for p in (r.engine, r.sidecar))
        return (*per_replica, self.gateway)

    @property
    def ports(self) -> tuple[int, ...]:
        extra = (port for p in self.processes for port in (p.metrics_port, p.kv_events_port))
        return tuple(p.port for p in self.processes) + tuple(p for p in extra if p is not None)


def replica_slots(model: Model, max_autoscaled: int) -> int:
    """How many replicas of `model` this machine may run: its `replicas`, or with
    autoscaling up to `maxReplicas`, at most `max_autoscaled` (one machine is small)."""
    spec = model.spec
    if not spec.autoscaling.enabled:
        return spec.replicas
    return min(spec.max_replicas, max(spec.replicas, spec.min_replicas, max_autoscaled))


def plan(models: list[Model], settings: PlanSettings) -> Plan:
    """The processes for `models`: engines and sidecars per replica slot, then the gateway.

    Every slot has its ports from the start; which slots run is the supervisor's business
    (the first `replicas` at start-up, then what the autoscaler asks for)."""
    replicas: list[ReplicaPlan] = []
    slot = 0
    for model in models:
        for index in range(replica_slots(model, settings.max_autoscaled_replicas)):
            replicas.append(_replica(model, index, slot, settings))
            slot += 1
    gateway = ProcessSpec(
        name="gateway",
        role=Role.GATEWAY,
        argv=(
            settings.python, "-m", "data_plane.gateway",
            "--host", settings.host,
            "--port", str(settings.gateway_port),
            "--discovery", "local",
            "--admin-url", f"http://127.0.0.1:{settings.admin_port}",
        ),
        port=settings.gateway_port,
        health_path="/healthz",
        ready_timeout_s=settings.ready_timeout_s,
        # No load balancer in front of it: on stop it need not keep serving to be drained.
        env={"HOIST_GATEWAY_DRAIN_DELAY_S": "0"},
    )  # fmt: skip
    return Plan(replicas=tuple(replicas), gateway=gateway)


def _replica(model: Model, index: int, slot: int, settings: PlanSettings) -> ReplicaPlan:
    name = f"{model.metadata.name}-{index}"
    engine_port = settings.engine_base_port + slot
    sidecar_port = settings.sidecar_base_port + slot
    metrics_port = None
    argv = engine_argv(model, index, engine_port, settings.python)
    if model.spec.engine is EngineKind.VLLM:
        metrics_port = settings.engine_metrics_base_port + slot
        argv += ("--metrics-port", str(metrics_port))
    engine = ProcessSpec(
        name=f"{name}/engine",
        role=Role.ENGINE,
        argv=argv,
        port=engine_port,
        metrics_port=metrics_port,
        kv_events_port=engine_port + KV_EVENTS_PORT_OFFSET if publishes_kv_events(model) else None,
        health_path="/health",
        ready_timeout_s=settings.engine_ready_timeout_s,
        model=model.metadata.name,
        replica=index,
    )
    sidecar = ProcessSpec(
        name=f"{name}/sidecar",
        role=Role.SIDECAR,
        argv=(
            settings.python, "-m", "data_plane.inference.sidecar_runtime",
            "--host", "127.0.0.1",
            "--port", str(sidecar_port),
            "--engine-url", f"http://127.0.0.1:{engine_port}",
            "--adapter-dir", f"{settings.adapters_dir}/{name}",
        ),
        port=sidecar_port,
        health_path="/healthz",
        ready_timeout_s=settings.ready_timeout_s,
        model=model.metadata.name,
        replica=index,
    )  # fmt: skip
    return ReplicaPlan(model=model.metadata.name, index=index, engine=engine, sidecar=sidecar)


def engine_argv(model: Model, index: int, port: int, python: str) -> tuple[str, ...]:
    """The command line of one engine replica."""
    spec = model.spec
    if spec.engine is EngineKind.SIM:
        argv = simulator_argv(model, python=python, host="127.0.0.1", port=port)
        argv += ["--seed", str(index)]
        return tuple(argv)
    document = model.model_dump_json(by_alias=True, exclude_none=True, exclude={"status"})
    return (
        python, "-m", "data_plane.inference.engine_api",
        "--model-json", document,
        "--host", "127.0.0.1",
        "--port", str(port),
    )  # fmt: skip
