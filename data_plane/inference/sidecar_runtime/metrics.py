"""The sidecar's metrics, in one registry built at start-up (no global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from data_plane.inference.sidecar_runtime.engine_metrics import StaticCollector, normalize
from data_plane.inference.sidecar_runtime.gpu import GpuCollector


class SidecarMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.adapter_loads = Counter(
            "adapter_loads_total",
            "Adapter loads into the engine, by outcome (success, failure)",
            ["outcome"],
            registry=r,
        )
        self.adapter_failures = Counter(
            "adapter_failures_total",
            "Adapter requests refused or loads failed, by reason",
            ["reason"],
            registry=r,
        )
        self.adapter_load_seconds = Histogram(
            "adapter_load_seconds",
            "Time to fetch, verify and load an adapter",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.adapter_fetched_bytes = Counter(
            "adapter_fetched_bytes_total", "Bytes of adapters fetched", registry=r
        )
        self.adapters_desired = Gauge(
            "adapters_desired", "Adapters the sidecar keeps loaded", registry=r
        )
        self.adapters_loaded = Gauge(
            "adapters_loaded", "Desired adapters the engine lists right now", registry=r
        )
        self.engine_up = Gauge("engine_up", "1 when the engine answers /health", registry=r)
        self.engine_restarts = Counter(
            "engine_restarts_total", "Engine restarts the sidecar observed", registry=r
        )
        self.engine_live = Gauge(
            "engine_live",
            "1 while /livez/engine passes (starting, healthy, or within the hang bound)",
            registry=r,
        )
        self.engine_hangs = Counter(
            "engine_hangs_total",
            "Times the engine went unresponsive past the bound (/livez/engine failed)",
            registry=r,
        )
        self.gpu = GpuCollector()
        r.register(self.gpu)

    def render(self, engine_text: str | None) -> bytes:
        """The sidecar's own metrics, then the engine's (normalized) when it answered."""
        own = generate_latest(self.registry)
        if not engine_text:
            return own
        extra = CollectorRegistry(auto_describe=False)
        extra.register(StaticCollector(normalize(engine_text)))
        return own + generate_latest(extra)
