"""engine_api's own metrics (the supervisor's view of the engine), one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.model_load_time = Gauge(
            "model_load_time_seconds",
            "Seconds from starting the engine to its first healthy answer (last start)",
            registry=r,
        )
        self.engine_ready = Gauge("engine_ready", "1 while the engine answers /health", registry=r)
        self.engine_starts = Counter(
            "engine_starts_total",
            "Engine starts, by outcome (ready, failed)",
            ["outcome"],
            registry=r,
        )
        self.engine_restarts = Counter(
            "engine_process_restarts_total",
            "Times the supervisor restarted the engine",
            registry=r,
        )
        self.watchdog_restarts = Counter(
            "engine_watchdog_restarts_total",
            "Engine restarts by reason: crashed (it exited) or unresponsive (alive, but it"
            " stopped answering /health past the bound and was killed)",
            ["reason"],
            registry=r,
        )
        self.download_bytes = Counter(
            "model_download_bytes_total", "Bytes of model weights downloaded", registry=r
        )
