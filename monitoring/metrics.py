"""Every metric the dashboards and rules read: one list to cross-check against the exporters.

A metric that a dashboard or a rule uses must be listed here (a test parses every query and
fails otherwise), and each entry says which process exports it, so a reviewer can compare
this list with what `/metrics` of each component shows. `embedded` marks the metrics that
the embedded default (`hoist up -f examples/sim`) exports, which the real-Prometheus test
requires to be present and to show data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Exporter(StrEnum):
    GATEWAY = "gateway"
    """data_plane.gateway, port 8080."""
    SIDECAR = "sidecar"
    """data_plane.inference.sidecar_runtime, port 8090; it also re-exports the engine's
    `vllm:*` series under the bounded `engine_*` names (see its engine_metrics module)."""
    ENGINE_API = "engine_api"
    """data_plane.inference.engine_api's own /metrics (port 8001 in a pod)."""
    CONTROLLER = "controller"
    """control_plane operators and autoscaler (port 9090 in a cluster); in the embedded
    default, the supervisor's admin API serves the adapter reconciler's share of them."""


@dataclass(frozen=True)
class Metric:
    name: str
    """As exposed, counters with their `_total`, histograms without `_bucket`."""
    kind: Kind
    exporter: Exporter
    labels: tuple[str, ...]
    """The labels the dashboards and rules group or filter by."""
    embedded: bool
    """Exported (and expected to have samples under load) by the embedded default."""
    help: str


M, G, S, E = Kind, Exporter.GATEWAY, Exporter.SIDECAR, Exporter.ENGINE_API
C, A = Exporter.CONTROLLER, Exporter.CONTROLLER

# fmt: off
METRICS: tuple[Metric, ...] = (
    # The gateway (data_plane/gateway/metrics.py). The seed's two names first.
    Metric("inference_requests_total", M.COUNTER, G, ("model", "adapter", "endpoint", "status"),
           True, "Requests answered, by model, adapter, endpoint and status class (2xx, 5xx)"),
    Metric("inference_latency_seconds", M.HISTOGRAM, G, ("model", "endpoint"), True,
           "Arrival to the last byte of the answer"),
    Metric("inference_time_to_first_token_seconds", M.HISTOGRAM, G, ("model", "adapter"), True,
           "Arrival to the first streamed chunk (streaming requests)"),
    Metric("inference_time_per_output_token_seconds", M.HISTOGRAM, G, ("model", "adapter"), True,
           "Time per output token after the first (streaming requests)"),
    Metric("inference_prompt_tokens_total", M.COUNTER, G, ("model", "adapter"), True,
           "Prompt tokens, from the engine's usage"),
    Metric("inference_output_tokens_total", M.COUNTER, G, ("model", "adapter"), True,
           "Output tokens, from the engine's usage"),
    Metric("gateway_in_flight_requests", M.GAUGE, G, ("model",), True,
           "Requests being served, by model"),
    Metric("gateway_replica_in_flight_requests", M.GAUGE, G, ("model", "replica"), True,
           "Requests being served, by replica"),
    Metric("gateway_queued_requests", M.GAUGE, G, ("model", "reason"), True,
           "Requests waiting: gateway limit, every replica at its cap, or a cold start"),
    Metric("gateway_rejected_requests_total", M.COUNTER, G, ("reason",), False,
           "Requests the gateway refused itself (429, 413...), by reason"),
    # Tenancy (data_plane/gateway/tenancy/metrics.py); only with tenants declared.
    Metric("gateway_tenant_requests_total", M.COUNTER, G, ("tenant",), False,
           "Requests admitted, by tenant"),
    Metric("gateway_tenant_tokens_total", M.COUNTER, G, ("tenant",), False,
           "Prompt plus completion tokens served, by tenant"),
    Metric("gateway_tenant_throttled_total", M.COUNTER, G, ("tenant", "quota"), False,
           "Requests refused by a tenant quota (429), by tenant and quota"),
    Metric("gateway_tenant_denied_total", M.COUNTER, G, ("tenant", "reason"), False,
           "Requests refused by tenancy (unauthorized, forbidden, not_found)"),
    Metric("gateway_tenant_queue_seconds", M.HISTOGRAM, G, ("tenant",), False,
           "Time a tenant's requests waited for a replica"),
    Metric("gateway_share_sync_up", M.GAUGE, G, (), False,
           "1 while admission state is shared through Redis; 0: this process decides alone"),
    Metric("gateway_share_sync_errors_total", M.COUNTER, G, ("kind",), False,
           "Failed syncs of the shared admission state (error, timeout)"),
    Metric("gateway_routing_decisions_total", M.COUNTER, G, ("model", "policy"), True,
           "Replica choices, by routing policy and reason"),
    Metric("gateway_upstream_retries_total", M.COUNTER, G, ("model",), False,
           "Requests retried on another replica before the first byte reached the client"),
    Metric("gateway_upstream_failures_total", M.COUNTER, G, ("model", "kind"), False,
           "Upstream failures (connect, timeout, status)"),
    Metric("gateway_replica_ejections_total", M.COUNTER, G, ("model",), False,
           "Replicas taken out of rotation after failures"),
    Metric("gateway_replicas", M.GAUGE, G, ("model", "state"), True,
           "Replicas the gateway knows per model, by state (ready, ejected, not_ready)"),
    # The sidecar (sidecar_runtime/metrics.py): adapters, GPU, and the engine's vllm:*
    # series renamed to bounded names (sidecar_runtime/engine_metrics.py).
    Metric("engine_requests_running", M.GAUGE, S, ("model",), True, "vllm:num_requests_running"),
    Metric("engine_requests_waiting", M.GAUGE, S, ("model",), True, "vllm:num_requests_waiting"),
    Metric("engine_kv_cache_usage_ratio", M.GAUGE, S, ("model",), True,
           "vllm:kv_cache_usage_perc, 0..1"),
    Metric("engine_generation_tokens_total", M.COUNTER, S, ("model",), True,
           "vllm:generation_tokens"),
    Metric("engine_prefix_cache_queries_total", M.COUNTER, S, ("model",), True,
           "vllm:prefix_cache_queries"),
    Metric("engine_prefix_cache_hits_total", M.COUNTER, S, ("model",), True,
           "vllm:prefix_cache_hits"),
    Metric("engine_up", M.GAUGE, S, (), True, "1 while the engine answers /health"),
    Metric("engine_restarts_total", M.COUNTER, S, (), True, "Engine restarts the sidecar saw"),
    Metric("adapters_desired", M.GAUGE, S, (), True, "Adapters the sidecar keeps loaded"),
    Metric("adapters_loaded", M.GAUGE, S, (), True, "Desired adapters the engine lists now"),
    Metric("adapter_loads_total", M.COUNTER, S, ("outcome",), True,
           "Adapter loads into the engine, by outcome (success, failure)"),
    Metric("adapter_failures_total", M.COUNTER, S, ("reason",), False,
           "Adapter requests refused or loads failed, by reason"),
    Metric("adapter_load_seconds", M.HISTOGRAM, S, (), True,
           "Time to fetch, verify and load an adapter"),
    Metric("gpu_utilization", M.GAUGE, S, ("gpu",), False,
           "GPU utilization 0..1 from NVML; absent where there is no GPU"),
    # engine_api's own /metrics: the real vLLM engine only (absent with the simulator).
    Metric("model_load_time_seconds", M.GAUGE, E, (), False,
           "Seconds from starting the engine to its first healthy answer"),
    # The controller: operators (control_plane/operator/metrics.py) and autoscaler
    # (control_plane/autoscaler/metrics.py).
    Metric("hoist_operator_sidecar_calls_total", M.COUNTER, C, ("action", "result"), True,
           "Calls to inference sidecars by action (list, load, unload) and result"),
    Metric("hoist_operator_adapter_drift_repairs_total", M.COUNTER, C, ("model",), False,
           "Adapters re-loaded on a pod that had lost them"),
    Metric("hoist_operator_reconciles_total", M.COUNTER, C, ("kind", "result"), False,
           "Reconcile passes by resource kind and result (ok, error, invalid)"),
    Metric("hoist_operator_reconcile_seconds", M.HISTOGRAM, C, ("kind",), False,
           "Duration of one reconcile pass"),
    Metric("autoscaler_desired_replicas", M.GAUGE, A, ("namespace", "model"), False,
           "Replicas the autoscaler asks for"),
    Metric("autoscaler_actual_replicas", M.GAUGE, A, ("namespace", "model"), False,
           "Replicas that exist (ready or loading)"),
    Metric("autoscaler_ready_replicas", M.GAUGE, A, ("namespace", "model"), False,
           "Replicas ready to serve"),
    Metric("autoscaler_scaling_decisions_total", M.COUNTER, A, ("namespace", "model", "reason"),
           False, "Autoscaler decisions, by reason"),
    Metric("autoscaler_panic_mode", M.GAUGE, A, ("namespace", "model"), False,
           "1 while the model is in panic mode"),
)
# fmt: on

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def series_names(metric: Metric) -> tuple[str, ...]:
    """The series names Prometheus stores for `metric`."""
    if metric.kind is Kind.HISTOGRAM:
        return tuple(f"{metric.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return (metric.name,)


def metric_of_series(series: str) -> Metric | None:
    """The catalogue entry a stored series name belongs to (`x_bucket` -> `x`)."""
    if series in BY_NAME:
        return BY_NAME[series]
    for suffix in ("_bucket", "_count", "_sum"):
        base = series.removesuffix(suffix)
        metric = BY_NAME.get(base)
        if base != series and metric is not None and metric.kind is Kind.HISTOGRAM:
            return metric
    return None
