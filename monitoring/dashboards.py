"""Hoist's three Grafana dashboards: overview, engines, control plane.

Queries filter by the `$model` (and, where the gateway labels it, `$adapter`) variables and
use `$__rate_interval`. Panels about rare events (retries, failures, repairs) end in
`or vector(0)`, so they read 0 rather than "No data" while nothing has gone wrong.
"""

from __future__ import annotations

from monitoring.grafana import Dashboard, Panel, Query, Row, Variable

RATE = "$__rate_interval"
ERRORS = ', status=~"5.."'
"""Server errors: the gateway's status classes are 2xx, 4xx, 5xx, client_closed."""
MODEL = 'model=~"$model"'
SEL = 'model=~"$model", adapter=~"$adapter"'
"""For the gateway's answer series: requests, TTFT, TPOT and tokens carry the adapter."""

MODEL_VARIABLE = Variable("model", "Model", "label_values(inference_requests_total, model)")
ADAPTER_VARIABLE = Variable(
    "adapter", "Adapter", 'label_values(inference_requests_total{model=~"$model"}, adapter)'
)
ENGINE_MODEL_VARIABLE = Variable("model", "Model", "label_values(engine_requests_running, model)")


def _rate(metric: str, selector: str = "") -> str:
    return f"rate({metric}{{{selector}}}[{RATE}])" if selector else f"rate({metric}[{RATE}])"


def _quantiles(metric: str, by: str, selector: str = "") -> tuple[Query, ...]:
    group = f"{by}, le" if by else "le"
    legend = " ".join("{{" + label + "}}" for label in by.split(", ") if label)
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({group}) ({_rate(f'{metric}_bucket', selector)}))",
            f"p{round(q * 100)} {legend}".strip(),
        )
        for q in (0.5, 0.95, 0.99)
    )


def _sum(by: str, inner: str, legend: str, *, rare: bool = False) -> Query:
    expr = f"sum by ({by}) ({inner})" if by else f"sum({inner})"
    return Query(expr + (" or vector(0)" if rare else ""), legend)


def overview() -> Dashboard:
    requests = f"sum by (model) ({_rate('inference_requests_total', SEL)})"
    errors = f"sum by (model) ({_rate('inference_requests_total', SEL + ERRORS)})"
    return Dashboard(
        uid="hoist-overview",
        title="Hoist / Overview",
        description="What clients see through the gateway: traffic, errors, latency, "
        "time to first token and tokens per second, by model and adapter.",
        variables=(MODEL_VARIABLE, ADAPTER_VARIABLE),
        rows=(
            Row(
                "Traffic and errors",
                (
                    Panel(
                        "Requests per second by model and adapter",
                        "Requests the gateway answered, whatever their status "
                        "(adapter empty: the base model).",
                        "reqps",
                        (
                            _sum(
                                "model, adapter",
                                _rate("inference_requests_total", SEL),
                                "{{model}} {{adapter}}",
                            ),
                        ),
                        stacked=True,
                    ),
                    Panel(
                        "Responses by status class",
                        "2xx, 4xx (429: over capacity), 5xx (503: no ready replica), "
                        "client_closed.",
                        "reqps",
                        (_sum("status", _rate("inference_requests_total", SEL), "{{status}}"),),
                        stacked=True,
                    ),
                    Panel(
                        "Server error ratio by model",
                        "Share of requests answered 5xx (alert: HoistHighErrorRate).",
                        "percentunit",
                        (Query(f"({errors} or {requests} * 0) / {requests}", "{{model}}"),),
                    ),
                    Panel(
                        "Requests in flight and queued",
                        "Being served by model; waiting for a free slot at the gateway.",
                        "short",
                        (
                            _sum("model", f"gateway_in_flight_requests{{{MODEL}}}", "{{model}}"),
                            _sum("", "gateway_queued_requests", "queued"),
                        ),
                    ),
                ),
            ),
            Row(
                "Latency",
                (
                    Panel(
                        "Request latency by model",
                        "Arrival to the last byte, as the client sees it.",
                        "s",
                        _quantiles("inference_latency_seconds", "model", MODEL),
                    ),
                    Panel(
                        "Time to first token by model",
                        "Streaming requests; the SLO signal (alert: HoistTTFTBudgetBurnFast).",
                        "s",
                        _quantiles("inference_time_to_first_token_seconds", "model", SEL),
                    ),
                    Panel(
                        "Time per output token by model",
                        "Gap between streamed tokens after the first.",
                        "s",
                        _quantiles("inference_time_per_output_token_seconds", "model", SEL),
                    ),
                    Panel(
                        "Requests per second by endpoint",
                        "/v1/chat/completions and /v1/completions.",
                        "reqps",
                        (
                            _sum(
                                "endpoint",
                                _rate("inference_requests_total", SEL),
                                "{{endpoint}}",
                            ),
                        ),
                        stacked=True,
                    ),
                ),
            ),
            Row(
                "Tokens",
                (
                    Panel(
                        "Output tokens per second by model and adapter",
                        "Completion tokens, from the engines' usage (adapter empty: the base"
                        " model).",
                        "short",
                        (
                            _sum(
                                "model, adapter",
                                _rate("inference_output_tokens_total", SEL),
                                "{{model}} {{adapter}}",
                            ),
                        ),
                        stacked=True,
                    ),
                    Panel(
                        "Prompt tokens per second by model and adapter",
                        "Prompt tokens, from the engines' usage (adapter empty: the base model).",
                        "short",
                        (
                            _sum(
                                "model, adapter",
                                _rate("inference_prompt_tokens_total", SEL),
                                "{{model}} {{adapter}}",
                            ),
                        ),
                        stacked=True,
                    ),
                ),
            ),
            Row(
                "Routing and resilience",
                (
                    Panel(
                        "Routing decisions by policy",
                        "Replica choices made by each routing policy.",
                        "ops",
                        (
                            _sum(
                                "policy",
                                _rate("gateway_routing_decisions_total", MODEL),
                                "{{policy}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Replicas by state",
                        "What the gateway can route to: ready, ejected, not_ready.",
                        "short",
                        (
                            _sum(
                                "model, state",
                                f"gateway_replicas{{{MODEL}}}",
                                "{{model}} {{state}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Retries, upstream failures and ejections",
                        "Retries before the first byte; failed upstream calls; replicas "
                        "taken out of rotation.",
                        "ops",
                        (
                            _sum(
                                "",
                                _rate("gateway_upstream_retries_total", MODEL),
                                "retries",
                                rare=True,
                            ),
                            _sum(
                                "",
                                _rate("gateway_upstream_failures_total", MODEL),
                                "upstream failures",
                                rare=True,
                            ),
                            _sum(
                                "",
                                _rate("gateway_replica_ejections_total", MODEL),
                                "ejections",
                                rare=True,
                            ),
                        ),
                    ),
                    Panel(
                        "Requests refused by the gateway",
                        "By reason: over capacity, body too large, queue timeout...",
                        "ops",
                        (
                            _sum(
                                "reason",
                                _rate("gateway_rejected_requests_total"),
                                "{{reason}}",
                                rare=True,
                            ),
                        ),
                    ),
                ),
            ),
            Row(
                "Tenants",
                (
                    Panel(
                        "Requests by tenant",
                        "Requests admitted for each tenant (docs/tenancy.md).",
                        "reqps",
                        (
                            _sum(
                                "tenant",
                                _rate("gateway_tenant_requests_total"),
                                "{{tenant}}",
                                rare=True,
                            ),
                        ),
                    ),
                    Panel(
                        "Tokens by tenant",
                        "Prompt plus completion tokens per second, from the engine's usage.",
                        "short",
                        (
                            _sum(
                                "tenant",
                                _rate("gateway_tenant_tokens_total"),
                                "{{tenant}}",
                                rare=True,
                            ),
                        ),
                    ),
                    Panel(
                        "Throttled and denied",
                        "429 by quota; 401/403/404 refused by tenancy.",
                        "ops",
                        (
                            _sum(
                                "tenant, quota",
                                _rate("gateway_tenant_throttled_total"),
                                "{{tenant}} over {{quota}}",
                                rare=True,
                            ),
                            _sum(
                                "tenant, reason",
                                _rate("gateway_tenant_denied_total"),
                                "{{tenant}} {{reason}}",
                                rare=True,
                            ),
                        ),
                    ),
                    Panel(
                        "Queue time by tenant",
                        "Time waiting for a replica, for the requests that waited.",
                        "s",
                        _quantiles("gateway_tenant_queue_seconds", "tenant")[1:],
                    ),
                    Panel(
                        "Shared admission state",
                        "Gateway processes deciding fair shares and caps alone (Redis out of"
                        " reach), and failed syncs; empty without tenant_redis_url.",
                        "short",
                        (
                            Query(
                                "count(gateway_share_sync_up == 0) or vector(0)",
                                "processes deciding alone",
                            ),
                            _sum(
                                "kind",
                                _rate("gateway_share_sync_errors_total"),
                                "sync {{kind}}",
                                rare=True,
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


def engines() -> Dashboard:
    def per_replica(metric: str, *, agg: str = "sum") -> Query:
        return Query(f"{agg} by (model, instance) ({metric}{{{MODEL}}})", "{{model}} {{instance}}")

    return Dashboard(
        uid="hoist-engines",
        title="Hoist / Engines",
        description="Each engine replica: queue, KV cache, adapters, GPU, restarts "
        "(engine series come through each pod's sidecar, renamed from vllm:*).",
        variables=(ENGINE_MODEL_VARIABLE,),
        rows=(
            Row(
                "Load",
                (
                    Panel(
                        "Running requests per replica",
                        "vllm:num_requests_running.",
                        "short",
                        (per_replica("engine_requests_running"),),
                    ),
                    Panel(
                        "Waiting requests per replica",
                        "vllm:num_requests_waiting: queued inside the engine.",
                        "short",
                        (per_replica("engine_requests_waiting"),),
                    ),
                    Panel(
                        "KV cache usage per replica",
                        "vllm:kv_cache_usage_perc.",
                        "percentunit",
                        (per_replica("engine_kv_cache_usage_ratio", agg="max"),),
                    ),
                    Panel(
                        "Generated tokens per second per replica",
                        "vllm:generation_tokens.",
                        "short",
                        (
                            Query(
                                f"sum by (model, instance) "
                                f"({_rate('engine_generation_tokens_total', MODEL)})",
                                "{{model}} {{instance}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Prefix cache hit ratio by model",
                        "Share of prompt tokens found in the prefix cache.",
                        "percentunit",
                        (
                            Query(
                                f"sum by (model) ({_rate('engine_prefix_cache_hits_total', MODEL)})"
                                f" / sum by (model) "
                                f"({_rate('engine_prefix_cache_queries_total', MODEL)})",
                                "{{model}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Gateway requests in flight per replica",
                        "What the gateway has sent each replica and not yet answered.",
                        "short",
                        (
                            _sum(
                                "model, replica",
                                f"gateway_replica_in_flight_requests{{{MODEL}}}",
                                "{{model}} {{replica}}",
                            ),
                        ),
                    ),
                ),
            ),
            Row(
                "Adapters, GPUs and health",
                (
                    Panel(
                        "Loaded adapters per replica",
                        "Adapters each sidecar keeps loaded, against those the engine lists.",
                        "short",
                        (
                            Query("sum by (instance) (adapters_loaded)", "loaded {{instance}}"),
                            Query("sum by (instance) (adapters_desired)", "desired {{instance}}"),
                        ),
                    ),
                    Panel(
                        "GPU utilization",
                        "From NVML in each pod; absent on CPU-only replicas.",
                        "percentunit",
                        (
                            Query(
                                "avg by (instance, gpu) (gpu_utilization)", "{{instance}} {{gpu}}"
                            ),
                        ),
                    ),
                    Panel(
                        "Engines up and restarts",
                        "Engines answering /health; restarts the sidecars saw.",
                        "short",
                        (
                            Query("sum(engine_up)", "engines up"),
                            _sum("", _rate("engine_restarts_total"), "restarts/s", rare=True),
                        ),
                    ),
                    Panel(
                        "Model load time",
                        "Engine start to first healthy answer (real vLLM, via engine_api).",
                        "s",
                        (Query("max by (instance) (model_load_time_seconds)", "{{instance}}"),),
                    ),
                ),
            ),
        ),
    )


def control_plane() -> Dashboard:
    return Dashboard(
        uid="hoist-control-plane",
        title="Hoist / Control plane",
        description="What the controller decides and how it goes: replicas, autoscaling, "
        "adapter loads, failures and drift repairs.",
        variables=(),
        rows=(
            Row(
                "Replicas and autoscaling",
                (
                    Panel(
                        "Desired vs ready replicas by model",
                        "Autoscaler's target, what exists, what is ready; and what the "
                        "gateway can route to.",
                        "short",
                        (
                            _sum("model", "autoscaler_desired_replicas", "desired {{model}}"),
                            _sum("model", "autoscaler_actual_replicas", "existing {{model}}"),
                            _sum("model", "autoscaler_ready_replicas", "ready {{model}}"),
                            _sum(
                                "model",
                                'gateway_replicas{state="ready"}',
                                "routable {{model}}",
                            ),
                        ),
                        width=16,
                    ),
                    Panel(
                        "Autoscaler decisions by reason",
                        "One decision per model per tick; panic mode scales up fast.",
                        "short",
                        (
                            _sum(
                                "reason",
                                f"increase(autoscaler_scaling_decisions_total[{RATE}])",
                                "{{reason}}",
                            ),
                            _sum("model", "autoscaler_panic_mode", "panic {{model}}"),
                        ),
                        width=8,
                    ),
                ),
            ),
            Row(
                "Adapters",
                (
                    Panel(
                        "Adapter load time",
                        "Fetch, verify and load, per sidecar.",
                        "s",
                        _quantiles("adapter_load_seconds", ""),
                    ),
                    Panel(
                        "Adapter loads by outcome",
                        "Loads into the engines (alert: HoistAdapterLoadFailures).",
                        "ops",
                        (_sum("outcome", _rate("adapter_loads_total"), "{{outcome}}"),),
                    ),
                    Panel(
                        "Adapter failures by reason",
                        "Refused requests and failed loads, as the sidecars report them.",
                        "ops",
                        (_sum("reason", _rate("adapter_failures_total"), "{{reason}}", rare=True),),
                    ),
                    Panel(
                        "Adapters desired vs loaded",
                        "Across all sidecars (alert: HoistAdapterStuckLoading).",
                        "short",
                        (
                            Query("sum(adapters_desired)", "desired"),
                            Query("sum(adapters_loaded)", "loaded"),
                        ),
                    ),
                    Panel(
                        "Drift repairs by model",
                        "Adapters a pod had lost (engine or pod restart), re-loaded.",
                        "short",
                        (
                            _sum(
                                "model",
                                f"increase(hoist_operator_adapter_drift_repairs_total[{RATE}])",
                                "{{model}}",
                                rare=True,
                            ),
                        ),
                    ),
                    Panel(
                        "Controller calls to sidecars",
                        "By action (list, load, unload) and result.",
                        "ops",
                        (
                            _sum(
                                "action, result",
                                _rate("hoist_operator_sidecar_calls_total"),
                                "{{action}} {{result}}",
                            ),
                        ),
                    ),
                ),
            ),
            Row(
                "Reconciliation",
                (
                    Panel(
                        "Reconciles by kind and result",
                        "ok, error (retried), invalid (the spec is wrong).",
                        "ops",
                        (
                            _sum(
                                "kind, result",
                                _rate("hoist_operator_reconciles_total"),
                                "{{kind}} {{result}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Reconcile duration",
                        "One pass of a handler, by resource kind.",
                        "s",
                        _quantiles("hoist_operator_reconcile_seconds", "kind"),
                    ),
                ),
            ),
        ),
    )


def all_dashboards() -> list[Dashboard]:
    return [overview(), engines(), control_plane()]
