"""The operator's Prometheus metrics (one registry per process, passed in)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sidecar_calls = Counter(
            "hoist_operator_sidecar_calls_total",
            "Calls to inference sidecars by action (list, load, unload) and result.",
            ["action", "result"],
            registry=registry,
        )
        self.drift_repairs = Counter(
            "hoist_operator_adapter_drift_repairs_total",
            "Adapters re-loaded on a pod that had lost them (engine or pod restart).",
            ["model"],
            registry=registry,
        )
        self.reconciles = Counter(
            "hoist_operator_reconciles_total",
            "Reconcile passes by resource kind and result (ok, error, invalid).",
            ["kind", "result"],
            registry=registry,
        )
        self.reconcile_seconds = Histogram(
            "hoist_operator_reconcile_seconds",
            "Duration of one reconcile pass.",
            ["kind"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )

    # control_plane.lora_manager.cycle.AdapterMetrics
    def sidecar_call(self, action: str, result: str) -> None:
        self.sidecar_calls.labels(action, result).inc()

    def drift_repaired(self, model: str, count: int) -> None:
        self.drift_repairs.labels(model).inc(count)
