"""Hoist's three Grafana dashboards: overview, engines, control plane.

Queries filter by the `$model` and `$adapter` variables and use `$__rate_interval`. Panels
about rare events (retries, failures, repairs) end in `or vector(0)`, so they read 0 rather
than "No data" while nothing has gone wrong.
"""

from __future__ import annotations

from monitoring.grafana import Dashboard, Panel, Query, Row, Variable

RATE = "$__rate_interval"
SEL = 'model=~"$model", adapter=~"$adapter"'
MODEL = 'model=~"$model"'

MODEL_VARIABLE = Variable("model", "Model", "label_values(inference_requests_total, model)")
ADAPTER_VARIABLE = Variable(
    "adapter", "Adapter", 'label_values(inference_requests_total{model=~"$model"}, adapter)'
)
ENGINE_MODEL_VARIABLE = Variable("model", "Model", "label_values(engine_requests_running, model)")


def _quantiles(metric: str, by: str, selector: str) -> tuple[Query, ...]:
    legend = " / ".join("{{" + label + "}}" for label in by.split(", "))
    rate = f"rate({metric}_bucket{{{selector}}}[{RATE}])"
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({by}, le) ({rate}))",
            f"p{round(q * 100)} {legend}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def overview() -> Dashboard:
    requests = f"sum by (model) (rate(inference_requests_total{{{SEL}}}[{RATE}]))"
    errors = f'sum by (model) (rate(inference_requests_total{{{SEL}, status=~"5.."}}[{RATE}]))'
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
                        "Requests the gateway answered, whatever their status.",
                        "reqps",
                        (
                            Query(
                                f"sum by (model, adapter) "
                                f"(rate(inference_requests_total{{{SEL}}}[{RATE}]))",
                                "{{model}} {{adapter}}",
                            ),
                        ),
                        stacked=True,
                    ),
                    Panel(
                        "Responses by status",
                        "Answers by HTTP status: 429 is back-pressure, 503 no ready replica.",
                        "reqps",
                        (
                            Query(
                                f"sum by (status) "
                                f"(rate(inference_requests_total{{{SEL}}}[{RATE}]))",
                                "{{status}}",
                            ),
                        ),
                        stacked=True,
                    ),
                    Panel(
                        "Server error ratio by model",
                        "Share of requests answered 5xx (alert: HoistHighErrorRate).",
                        "percentunit",
                        (Query(f"({errors} or {requests} * 0) / {requests}", "{{model}}"),),
                    ),
                    Panel(
                        "Requests in flight by model",
                        "Requests the gateway holds open now.",
                        "short",
                        (
                            Query(
                                f"sum by (model) (inference_requests_in_flight{{{MODEL}}})",
                                "{{model}}",
                            ),
                        ),
                    ),
                ),
            ),
            Row(
                "Latency",
                (
                    Panel(
                        "Request latency by model",
                        "Time to the last byte, as the client sees it.",
                        "s",
                        _quantiles("inference_latency_seconds", "model", SEL),
                    ),
                    Panel(
                        "Time to first token by model and adapter",
                        "The SLO signal (alert: HoistTTFTBudgetBurn).",
                        "s",
                        _quantiles("inference_time_to_first_token_seconds", "model, adapter", SEL),
                    ),
                    Panel(
                        "Time per output token by model",
                        "Gap between streamed tokens.",
                        "s",
                        _quantiles("inference_time_per_output_token_seconds", "model", SEL),
                    ),
                ),
            ),
            Row(
                "Tokens",
                (
                    Panel(
                        "Output tokens per second by model and adapter",
                        "Completion tokens of answered requests.",
                        "short",
                        (
                            Query(
                                f"sum by (model, adapter) "
                                f"(rate(inference_completion_tokens_total{{{SEL}}}[{RATE}]))",
                                "{{model}} {{adapter}}",
                            ),
                        ),
                        stacked=True,
                    ),
                    Panel(
                        "Prompt tokens per second by model and adapter",
                        "Prompt tokens of answered requests.",
                        "short",
                        (
                            Query(
                                f"sum by (model, adapter) "
                                f"(rate(inference_prompt_tokens_total{{{SEL}}}[{RATE}]))",
                                "{{model}} {{adapter}}",
                            ),
                        ),
                        stacked=True,
                    ),
                ),
            ),
            Row(
                "Routing",
                (
                    Panel(
                        "Routing decisions by policy",
                        "Replica choices made by each routing policy.",
                        "ops",
                        (
                            Query(
                                f"sum by (policy) "
                                f"(rate(gateway_routing_decisions_total{{{MODEL}}}[{RATE}]))",
                                "{{policy}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Retries and ejections",
                        "Retries before the first byte, and replicas taken out of rotation.",
                        "ops",
                        (
                            Query(
                                f"sum(rate(gateway_upstream_retries_total{{{MODEL}}}[{RATE}]))"
                                " or vector(0)",
                                "retries",
                            ),
                            Query(
                                f"sum(rate(gateway_replica_ejections_total{{{MODEL}}}[{RATE}]))"
                                " or vector(0)",
                                "ejections",
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


def engines() -> Dashboard:
    return Dashboard(
        uid="hoist-engines",
        title="Hoist / Engines",
        description="Each engine replica: queue, KV cache, adapters, GPU, restarts "
        "(engine series come through each pod's sidecar).",
        variables=(ENGINE_MODEL_VARIABLE,),
        rows=(
            Row(
                "Load",
                (
                    Panel(
                        "Running requests per replica",
                        "vllm:num_requests_running.",
                        "short",
                        (
                            Query(
                                f"sum by (model, instance) (engine_requests_running{{{MODEL}}})",
                                "{{model}} {{instance}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Waiting requests per replica",
                        "vllm:num_requests_waiting: requests queued inside the engine.",
                        "short",
                        (
                            Query(
                                f"sum by (model, instance) (engine_requests_waiting{{{MODEL}}})",
                                "{{model}} {{instance}}",
                            ),
                        ),
                    ),
                    Panel(
                        "KV cache usage per replica",
                        "vllm:kv_cache_usage_perc.",
                        "percentunit",
                        (
                            Query(
                                f"max by (model, instance) "
                                f"(engine_kv_cache_usage_ratio{{{MODEL}}})",
                                "{{model}} {{instance}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Generated tokens per second per replica",
                        "vllm:generation_tokens.",
                        "short",
                        (
                            Query(
                                f"sum by (model, instance) "
                                f"(rate(engine_generation_tokens_total{{{MODEL}}}[{RATE}]))",
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
                                f"sum by (model) "
                                f"(rate(engine_prefix_cache_hits_total{{{MODEL}}}[{RATE}]))"
                                f" / sum by (model) "
                                f"(rate(engine_prefix_cache_queries_total{{{MODEL}}}[{RATE}]))",
                                "{{model}}",
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
                        "1 while the engine answers /health; restarts seen by the sidecar.",
                        "short",
                        (
                            Query("sum(engine_up)", "engines up"),
                            Query(
                                f"sum(increase(engine_restarts_total[{RATE}])) or vector(0)",
                                "restarts",
                            ),
                        ),
                    ),
                    Panel(
                        "Model load time",
                        "Seconds from engine start to its first healthy answer (real vLLM).",
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
        description="What the controller decides and how it goes: replicas, adapter loads, "
        "failures and drift repairs.",
        variables=(),
        rows=(
            Row(
                "Replicas",
                (
                    Panel(
                        "Desired vs ready replicas by model",
                        "What the spec or the autoscaler asks for, and what serves.",
                        "short",
                        (
                            Query("sum by (model) (model_desired_replicas)", "desired {{model}}"),
                            Query("sum by (model) (model_ready_replicas)", "ready {{model}}"),
                        ),
                        width=24,
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
                        tuple(
                            Query(
                                f"histogram_quantile({q}, "
                                f"sum by (le) (rate(adapter_load_seconds_bucket[{RATE}])))",
                                f"p{round(q * 100)}",
                            )
                            for q in (0.5, 0.95, 0.99)
                        ),
                    ),
                    Panel(
                        "Adapter loads by outcome",
                        "Loads into the engines (alert: HoistAdapterLoadFailures).",
                        "ops",
                        (
                            Query(
                                f"sum by (outcome) (rate(adapter_loads_total[{RATE}]))",
                                "{{outcome}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Adapter failures by reason",
                        "Refused requests and failed loads, as the sidecars report them.",
                        "ops",
                        (
                            Query(
                                f"sum by (reason) (rate(adapter_failures_total[{RATE}]))"
                                " or vector(0)",
                                "{{reason}}",
                            ),
                        ),
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
                        "Adapters found missing or extra on a pod and put right.",
                        "short",
                        (
                            Query(
                                f"sum by (model) (increase(adapter_drift_repairs_total[{RATE}]))"
                                " or vector(0)",
                                "{{model}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Controller calls to sidecars",
                        "By operation and outcome.",
                        "ops",
                        (
                            Query(
                                f"sum by (operation, outcome) "
                                f"(rate(adapter_sidecar_calls_total[{RATE}]))",
                                "{{operation}} {{outcome}}",
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


def all_dashboards() -> list[Dashboard]:
    return [overview(), engines(), control_plane()]
