"""The `vllm:*` Prometheus series of one simulated engine, named, typed, labelled and
bucketed as vLLM 0.32 serves them (labels `model_name` and `engine="0"`).

Each engine has its own registry, so many engines in one process each serve only their
own series on their own `/metrics`. Latencies are in simulated seconds (equal to wall
seconds at `--time-scale 1`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from data_plane.inference.simulator.engine_core import SimRequest, StepResult

REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
ITERATION_TOKENS_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
REQUEST_PARAMS_N_BUCKETS = (1, 2, 5, 10, 20)
REQUEST_NUM_PREEMPTIONS_BUCKETS = (1, 2, 3, 4, 5, 10, 20)
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
PROMPT_SOURCES = ("local_compute", "local_cache_hit", "external_kv_transfer")
CACHE_HIT_SOURCES = ("device", "host", "p2p", "disk", "external_unspecified")
ADMISSION_REASONS = ("max_num_queued_reqs", "max_num_queued_tokens")
SLEEP_STATES = ("awake", "weights_offloaded", "discard_all")


def one_two_five_buckets(max_value: int) -> list[float]:
    """1, 2, 5, 10, 20, 50, ... up to `max_value` (vLLM's request-token buckets)."""
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return buckets
            buckets.append(float(value))
        exponent += 1


class EngineMetrics:
    """The series of one engine and the calls that update them."""

    def __init__(  # noqa: PLR0915 - one statement per series, as vLLM declares them
        self,
        *,
        model_name: str,
        max_model_len: int,
        max_loras: int | None,
        block_size: int,
        num_gpu_blocks: int,
        enable_prefix_caching: bool,
    ) -> None:
        self.registry = registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        names = ["model_name", "engine"]
        values = (model_name, "0")

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, names, registry=registry).labels(*values)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=registry).labels(*values)

        def histogram(name: str, doc: str, buckets: Sequence[float]) -> Histogram:
            return Histogram(name, doc, names, buckets=buckets, registry=registry).labels(*values)

        self.running = gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches."
        )
        self.waiting = gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed."
        )
        waiting_by_reason = Gauge(
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for "
            "scheduling capacity; 'deferred' = deferred by transient constraints (LoRA "
            "budget, KV transfer, blocked status). Sum of all reasons equals "
            "vllm:num_requests_waiting.",
            [*names, "reason"],
            registry=registry,
        )
        self.waiting_capacity = waiting_by_reason.labels(*values, "capacity")
        self.waiting_deferred = waiting_by_reason.labels(*values, "deferred")
        sleep_state = Gauge(
            "vllm:engine_sleep_state",
            "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine "
            "is awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means "
            "sleep level 2.",
            [*names, "sleep_state"],
            registry=registry,
        )
        for state in SLEEP_STATES:
            sleep_state.labels(*values, state).set(1.0 if state == "awake" else 0.0)
        self.kv_usage = gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."
        )
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
        )
        self.prefix_hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        )
        counter(
            "vllm:external_prefix_cache_queries",
            "External prefix cache queries from KV connector cross-instance cache sharing, "
            "in terms of number of queried tokens.",
        )
        counter(
            "vllm:external_prefix_cache_hits",
            "External prefix cache hits from KV connector cross-instance cache sharing, in "
            "terms of number of cached tokens.",
        )
        counter(
            "vllm:mm_cache_queries",
            "Multi-modal cache queries, in terms of number of queried items.",
        )
        counter("vllm:mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items.")
        self.preemptions = counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine."
        )
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        by_source = Counter(
            "vllm:prompt_tokens_by_source",
            "Number of prompt tokens by source.",
            [*names, "source"],
            registry=registry,
        )
        self.prompt_by_source = {s: by_source.labels(*values, s) for s in PROMPT_SOURCES}
        self.prompt_cached = counter(
            "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external)."
        )
        cached_by_source = Counter(
            "vllm:prompt_tokens_cached_by_source",
            "Prefix-cache hit tokens by the cache tier that supplied them: device (local "
            "HBM), host (offloaded to DRAM), disk, p2p (transferred from another vLLM "
            "instance) or external_unspecified. Counted at admission; sums to "
            "vllm:prefix_cache_hits + vllm:external_prefix_cache_hits.",
            [*names, "source"],
            registry=registry,
        )
        self.cached_on_device = {s: cached_by_source.labels(*values, s) for s in CACHE_HIT_SOURCES}[
            "device"
        ]
        self.generation_tokens = counter(
            "vllm:generation_tokens", "Number of generation tokens processed."
        )
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*names, "finished_reason"],
            registry=registry,
        )
        self.success = {reason: success.labels(*values, reason) for reason in FINISH_REASONS}
        rejections = Counter(
            "vllm:admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            ["model_name", "reason"],
            registry=registry,
        )
        for reason in ADMISSION_REASONS:
            rejections.labels(model_name, reason)

        token_buckets = one_two_five_buckets(max_model_len)
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", token_buckets
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            token_buckets,
        )
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            ITERATION_TOKENS_BUCKETS,
        )
        self.max_num_generation_tokens = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            token_buckets,
        )
        self.params_n = histogram(
            "vllm:request_params_n",
            "Histogram of the n request parameter.",
            REQUEST_PARAMS_N_BUCKETS,
        )
        self.params_max_tokens = histogram(
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            token_buckets,
        )
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            TTFT_BUCKETS,
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            ITL_BUCKETS,
        )
        self.tpot = histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            ITL_BUCKETS,
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.queue_time = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.inference_time = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.prefill_time = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.decode_time = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.request_preemptions = histogram(
            "vllm:request_num_preemptions",
            "Histogram of the number of times a request was preempted.",
            REQUEST_NUM_PREEMPTIONS_BUCKETS,
        )
        self.prefill_kv_computed = histogram(
            "vllm:request_prefill_kv_computed_tokens",
            "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
            token_buckets,
        )
        self.max_loras = max_loras
        self.lora_info: Gauge | None = None
        if max_loras is not None:
            self.lora_info = Gauge(
                "vllm:lora_requests_info",
                "Running stats on lora requests.",
                ["max_lora", "waiting_lora_adapters", "running_lora_adapters"],
                registry=registry,
            )
        cache_info = Gauge(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            ["block_size", "enable_prefix_caching", "engine", "num_gpu_blocks"],
            registry=registry,
        )
        cache_info.labels(
            str(block_size), str(enable_prefix_caching), "0", str(num_gpu_blocks)
        ).set(1)
        self._last_queries = 0
        self._last_hits = 0
        self._last_preemptions = 0

    # -- per step ------------------------------------------------------------------------

    def observe_step(self, result: StepResult) -> None:
        self.iteration_tokens.observe(result.num_prefill_tokens + result.num_decode_tokens)

    def observe_scheduler(
        self,
        *,
        running: int,
        waiting: int,
        deferred: int,
        kv_usage: float,
        prefix_queries: int,
        prefix_hits: int,
        preemptions: int,
        running_adapters: Sequence[str],
        waiting_adapters: Sequence[str],
    ) -> None:
        """The scheduler's state (vLLM records it every step; we also do at scrape time)."""
        self.running.set(running)
        self.waiting.set(waiting)
        self.waiting_capacity.set(waiting - deferred)
        self.waiting_deferred.set(deferred)
        self.kv_usage.set(kv_usage)
        if prefix_queries > self._last_queries:
            self.prefix_queries.inc(prefix_queries - self._last_queries)
            self._last_queries = prefix_queries
        if prefix_hits > self._last_hits:
            delta = prefix_hits - self._last_hits
            self.prefix_hits.inc(delta)
            self.cached_on_device.inc(delta)
            self._last_hits = prefix_hits
        if preemptions > self._last_preemptions:
            self.preemptions.inc(preemptions - self._last_preemptions)
            self._last_preemptions = preemptions
        if self.lora_info is not None:
            self.lora_info.labels(
                str(self.max_loras), ",".join(waiting_adapters), ",".join(running_adapters)
            ).set(time.time())

    # -- per token and request -----------------------------------------------------------

    def first_token(self, request: SimRequest) -> None:
        assert request.first_token_time is not None
        self.ttft.observe(max(request.first_token_time - request.arrival_time, 0.0))
        prompt = request.num_prompt_tokens
        cached = request.num_cached_tokens
        self.prompt_tokens.inc(prompt)
        self.prompt_by_source["local_compute"].inc(prompt - cached)
        self.prompt_by_source["local_cache_hit"].inc(cached)
        self.prompt_cached.inc(cached)

    def next_token(self, request: SimRequest) -> None:
        assert request.last_token_time is not None
        assert request.previous_token_time is not None
        self.itl.observe(request.last_token_time - request.previous_token_time)

    def tokens_generated(self, count: int) -> None:
        """Output tokens of one step (counted once per step: cheaper than per token)."""
        if count:
            self.generation_tokens.inc(count)

    def request_admitted(self, *, n: int, max_tokens: Sequence[int]) -> None:
        self.params_n.observe(n)
        if max_tokens:
            self.max_num_generation_tokens.observe(max(max_tokens))

    def request_finished(self, request: SimRequest, reason: str, *, max_tokens: int) -> None:
        """One sequence ended (vLLM observes these per sequence)."""
        self.success[reason].inc()
        end = request.finish_time or request.last_token_time or request.arrival_time
        arrival = request.arrival_time
        scheduled = request.first_scheduled_time if request.first_scheduled_time else end
        first = request.first_token_time if request.first_token_time else end
        outputs = request.num_output_tokens
        self.e2e.observe(max(end - arrival, 0.0))
        self.queue_time.observe(max(scheduled - arrival, 0.0))
        self.prefill_time.observe(max(first - scheduled, 0.0))
        self.decode_time.observe(max(end - first, 0.0))
        self.inference_time.observe(max(end - scheduled, 0.0))
        if outputs > 1:
            self.tpot.observe(max(end - first, 0.0) / (outputs - 1))
        self.request_prompt_tokens.observe(request.num_prompt_tokens)
        self.request_generation_tokens.observe(outputs)
        self.params_max_tokens.observe(max_tokens)
        self.request_preemptions.observe(request.num_preemptions)
        self.prefill_kv_computed.observe(request.num_prompt_tokens - request.num_cached_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
