"""The gateway's Prometheus metrics, in one registry built at start-up (no global state).

Labels are bounded: model and adapter ids come from discovery (anything else is counted
as `unknown`), status is a class (`2xx`, `4xx`, `5xx`, `client_closed`), replica names
come from the fleet. Never a request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from bisect import bisect_left
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1)

UNKNOWN = "unknown"

FLUSH_INTERVAL_S = 0.1
"""How long the hot path's moves and observations gather before they are written."""


QUEUE_REASONS = ("gateway", "replica_cap", "cold_start")
"""The values of `gateway_queued_requests`'s `reason` label."""


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "inference_requests_total",
            "Inference requests answered, by model, adapter, endpoint and status class.",
            ["model", "adapter", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "inference_latency_seconds",
            "Time from the request's arrival to the last byte of its answer.",
            ["model", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "inference_time_to_first_token_seconds",
            "Time from arrival to the first streamed chunk (streaming requests).",
            ["model", "adapter"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "inference_time_per_output_token_seconds",
            "Time per output token after the first (streaming requests).",
            ["model", "adapter"],
            buckets=_TPOT_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "inference_prompt_tokens_total",
            "Prompt tokens, as the engine reports them.",
            ["model", "adapter"],
            registry=r,
        )
        self.output_tokens = Counter(
            "inference_output_tokens_total",
            "Output tokens (the engine's usage; else one per streamed chunk).",
            ["model", "adapter"],
            registry=r,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests",
            "Requests being served, by model.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.replica_in_flight = Gauge(
            "gateway_replica_in_flight_requests",
            "Requests in flight on each replica.",
            ["model", "replica"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "gateway_queued_requests",
            "Requests waiting, by model and reason: the gateway's limit (`gateway`), every"
            " replica at its cap (`replica_cap`), no ready replica yet (`cold_start`).",
            ["model", "reason"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            "gateway_rejected_requests_total",
            "Requests refused by the gateway itself, by reason.",
            ["reason"],
            registry=r,
        )
        self.routing = Counter(
            "gateway_routing_decisions_total",
            "Replica choices, by model, policy and reason (e.g. prefix-hit, prefix-spill).",
            ["model", "policy", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "gateway_upstream_retries_total",
            "Requests sent to another replica after a failure before the first byte.",
            ["model", "reason"],
            registry=r,
        )
        self.upstream_failures = Counter(
            "gateway_upstream_failures_total",
            "Upstream failures (connect, timeout, status) by model.",
            ["model", "kind"],
            registry=r,
        )
        self.ejections = Counter(
            "gateway_replica_ejections_total",
            "Replicas taken out of rotation by passive health checks.",
            ["model", "replica"],
            registry=r,
        )
        self.replicas = Gauge(
            "gateway_replicas",
            "Replicas known per model, by state (ready, ejected, not_ready).",
            ["model", "state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.discovery_errors = Counter(
            "gateway_discovery_errors_total", "Failed discovery refreshes.", registry=r
        )
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        self._moves: dict[tuple[Counter | Gauge, tuple[str, ...]], float] = {}
        """What `add` gathered since the last `flush`."""
        self._observed: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}
        """What `observe` gathered since the last `flush`: per series, the sum of the
        values, then the count per bucket."""
        self._flush_at: asyncio.TimerHandle | None = None

    def exposition(self) -> bytes:
        """The text format; with several worker processes, the sum over all of them."""
        self.flush()
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)

    def declare_model(self, model: str) -> None:
        """Export a model's in-flight and queued series at zero as soon as it is known, so
        that dashboards and the autoscaler see 0 rather than no data before the first wait."""
        self.child(self.in_flight, model)
        for reason in QUEUE_REASONS:
            self.child(self.queued, model, reason)

    def forget_replica(self, model: str, replica: str) -> None:
        """Drop a replica's series once it is gone (pods come and go; labels stay bounded)."""
        for metric in (self.replica_in_flight, self.ejections):
            self._moves.pop((metric, (model, replica)), None)  # a late move must not revive it
            with contextlib.suppress(KeyError):
                metric.remove(model, replica)
            self._children.pop((id(metric), (model, replica)), None)

    def child(self, metric: M, *labels: str) -> M:
        """`metric.labels(*labels)`, cached: the lookup is on the hot path."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = metric.labels(*labels)
            self._children[key] = found
        return found  # type: ignore[return-value]

    def add(self, metric: Counter | Gauge, *labels: str, amount: float = 1) -> None:
        """`metric.labels(*labels).inc(amount)`, applied by the next `flush`, at most
        `FLUSH_INTERVAL_S` from now (at once, without a loop).

        The hot path's counters and in-flight gauges move several times per request; each
        write to prometheus_client costs a lock, label checks and, with several workers, a
        store into the shared metrics file. Summed per series first, each series is written
        once per interval whatever the traffic (a request's +1 and -1 cancel out).
        `/metrics` flushes before it reads, so this worker's series never lag; another
        worker's lag by at most `FLUSH_INTERVAL_S`."""
        if self._flush_at is None and not self._schedule():
            self.child(metric, *labels).inc(amount)
            return
        key = (metric, labels)
        moves = self._moves
        moves[key] = moves.get(key, 0) + amount

    def observe(self, metric: Histogram, value: float, *labels: str) -> None:
        """`metric.labels(*labels).observe(value)`, gathered as `add`'s moves are."""
        if self._flush_at is None and not self._schedule():
            self.child(metric, *labels).observe(value)
            return
        key = (metric, labels)
        bounds = metric._upper_bounds  # the buckets' upper bounds, +Inf last
        gathered = self._observed.get(key)
        if gathered is None:
            gathered = self._observed[key] = [0.0] * (len(bounds) + 1)
        gathered[0] += value
        gathered[1 + bisect_left(bounds, value)] += 1

    def _schedule(self) -> bool:
        """Arm the next flush; False without a running loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_at = loop.call_later(FLUSH_INTERVAL_S, self.flush)
        return True

    def flush(self) -> None:
        """Write what `add` and `observe` gathered."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        moves, self._moves = self._moves, {}
        for (metric, labels), amount in moves.items():
            child = self.child(metric, *labels)  # the series exists even when it nets to 0
            if amount:
                child.inc(amount)
        observed, self._observed = self._observed, {}
        for (histogram, labels), gathered in observed.items():
            series = self.child(histogram, *labels)
            # What observe() does per value, once per bucket: the buckets are stored
            # per bucket (cumulated when collected), the sum apart.
            series._sum.inc(gathered[0])
            for bucket, count in zip(series._buckets, gathered[1:], strict=True):
                if count:
                    bucket.inc(count)
