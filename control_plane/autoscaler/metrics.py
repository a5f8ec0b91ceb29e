"""The autoscaler's Prometheus metrics (one registry passed in; labels stay bounded)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from control_plane.autoscaler.algorithm import Recommendation


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["namespace", "model"]
        self.desired = Gauge(
            "autoscaler_desired_replicas",
            "Replicas the autoscaler asks for.",
            labels,
            registry=registry,
        )
        self.actual = Gauge(
            "autoscaler_actual_replicas",
            "Replicas that exist (ready or loading), as the autoscaler last saw them.",
            labels,
            registry=registry,
        )
        self.ready = Gauge(
            "autoscaler_ready_replicas",
            "Replicas ready to serve, as the autoscaler last saw them.",
            labels,
            registry=registry,
        )
        self.concurrency = Gauge(
            "autoscaler_observed_concurrency",
            "In-flight plus held requests the autoscaler observed (NaN: no fresh signal).",
            labels,
            registry=registry,
        )
        self.panic = Gauge(
            "autoscaler_panic_mode",
            "1 while the model is in panic mode (scaling up fast, never down).",
            labels,
            registry=registry,
        )
        self.decisions = Counter(
            "autoscaler_scaling_decisions_total",
            "Autoscaler decisions, by reason (one per model per tick).",
            [*labels, "reason"],
            registry=registry,
        )
        self.changes = Counter(
            "autoscaler_scale_changes_total",
            "Changes of the replica count the autoscaler applied, by direction.",
            [*labels, "direction"],
            registry=registry,
        )
        self.scrape_failures = Counter(
            "autoscaler_scrape_failures_total",
            "Engine or gateway metrics that could not be read.",
            ["source"],
            registry=registry,
        )

    def record(
        self, namespace: str, model: str, rec: Recommendation, *, current: int, actual: int
    ) -> None:
        obs = rec.observation
        self.desired.labels(namespace, model).set(rec.desired_replicas)
        self.actual.labels(namespace, model).set(actual)
        self.ready.labels(namespace, model).set(obs.ready if obs else 0)
        conc = obs.concurrency if obs and obs.concurrency is not None else float("nan")
        self.concurrency.labels(namespace, model).set(conc)
        self.panic.labels(namespace, model).set(1 if rec.panic else 0)
        self.decisions.labels(namespace, model, rec.reason.value).inc()
        if rec.desired_replicas != current:
            direction = "up" if rec.desired_replicas > current else "down"
            self.changes.labels(namespace, model, direction).inc()

    def forget(self, namespace: str, model: str) -> None:
        for gauge in (self.desired, self.actual, self.ready, self.concurrency, self.panic):
            try:
                gauge.remove(namespace, model)
            except KeyError:
                continue
