"""vLLM's `/metrics` renamed to Hoist's engine metrics (pure: text in, families out).

Hoist never re-exports `vllm:` names; dashboards read these instead, so a change of engine
or of vLLM's naming touches only this table. Labels are reduced to bounded ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Renamed:
    name: str
    documentation: str
    ratio: bool = False
    """A share (0..1) per engine: merged by taking the fullest engine, not by adding."""


# vLLM family name (as the parser reports it, counters without `_total`) -> ours.
ENGINE_METRICS: dict[str, Renamed] = {
    "vllm:num_requests_running": Renamed(
        "engine_requests_running", "Requests the engine is running now"
    ),
    "vllm:num_requests_waiting": Renamed(
        "engine_requests_waiting", "Requests queued in the engine"
    ),
    "vllm:kv_cache_usage_perc": Renamed(
        "engine_kv_cache_usage_ratio", "Share of the KV cache in use, 0..1", ratio=True
    ),
    "vllm:prompt_tokens": Renamed("engine_prompt_tokens", "Prompt tokens processed"),
    "vllm:generation_tokens": Renamed("engine_generation_tokens", "Tokens generated"),
    "vllm:request_success": Renamed(
        "engine_requests_finished", "Requests finished, by finish reason"
    ),
    "vllm:prefix_cache_queries": Renamed(
        "engine_prefix_cache_queries", "Tokens looked up in the prefix cache"
    ),
    "vllm:prefix_cache_hits": Renamed(
        "engine_prefix_cache_hits", "Tokens found in the prefix cache"
    ),
    "vllm:time_to_first_token_seconds": Renamed(
        "engine_time_to_first_token_seconds", "Time to first token inside the engine"
    ),
    "vllm:inter_token_latency_seconds": Renamed(
        "engine_time_per_output_token_seconds", "Time between output tokens inside the engine"
    ),
    "vllm:e2e_request_latency_seconds": Renamed(
        "engine_request_latency_seconds", "Request latency inside the engine"
    ),
}

# Labels kept (renamed); every other label is summed away.
KEPT_LABELS = {"model_name": "model", "finished_reason": "finished_reason", "le": "le"}


def normalize(text: str) -> list[Metric]:
    """Families of `ENGINE_METRICS` found in `text`, renamed and with bounded labels."""
    out: list[Metric] = []
    for family in text_string_to_metric_families(text):
        renamed = ENGINE_METRICS.get(family.name)
        if renamed is None:
            continue
        metric = Metric(renamed.name, renamed.documentation, family.type)
        sums: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            suffix = sample.name[len(family.name) :]
            labels = tuple(
                sorted(
                    (KEPT_LABELS[key], value)
                    for key, value in sample.labels.items()
                    if key in KEPT_LABELS
                )
            )
            key = (renamed.name + suffix, labels)
            if renamed.ratio:
                sums[key] = max(sums.get(key, 0.0), sample.value)
            else:
                sums[key] += sample.value
        for (name, labels), value in sums.items():
            metric.add_sample(name, dict(labels), value)
        out.append(metric)
    return out


class StaticCollector:
    """Yields a fixed list of families (one scrape's normalized engine metrics)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families
