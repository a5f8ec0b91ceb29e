"""The embedded supervisor's own metrics (beside the adapter reconciler's), on its registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from control_plane.api.liveness import RestartReason
from control_plane.local.plan import Role


class SupervisorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.restarts = Counter(
            "hoist_supervisor_restarts_total",
            "Processes the embedded supervisor restarted, by role (engine, sidecar, gateway)"
            " and reason (crashed, unresponsive, start_timeout).",
            ["role", "reason"],
            registry=registry,
        )

    def restarted(self, role: Role, reason: RestartReason) -> None:
        self.restarts.labels(role.value, reason.value).inc()
