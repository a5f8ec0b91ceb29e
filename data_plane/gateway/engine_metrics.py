"""Read an engine's load and latency counters from its Prometheus text (vLLM's names) (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from data_plane.gateway.liveness import EngineCounters

_COUNTERS = {
    "vllm:time_to_first_token_seconds_sum": "ttft_sum",
    "vllm:time_to_first_token_seconds_count": "ttft_count",
    "vllm:inter_token_latency_seconds_sum": "itl_sum",
    "vllm:inter_token_latency_seconds_count": "itl_count",
    "vllm:e2e_request_latency_seconds_sum": "e2e_sum",
    "vllm:e2e_request_latency_seconds_count": "e2e_count",
}


@dataclass(frozen=True, slots=True)
class EngineLoad:
    waiting: int = 0
    running: int = 0
    running_adapters: frozenset[str] | None = None
    """From `vllm:lora_requests_info` (its newest sample); None when absent."""
    counters: EngineCounters = field(default_factory=EngineCounters)
    """The latency histograms' sums and counts (summed over label sets)."""


def parse_engine_metrics(text: str) -> EngineLoad:
    waiting = 0.0
    running = 0.0
    lora_stamp = -1.0
    adapters: frozenset[str] | None = None
    sums = dict.fromkeys(_COUNTERS.values(), 0.0)
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name, _, rest = line.partition("{")
        if not rest:
            name, _, value_text = line.partition(" ")
            labels = ""
        else:
            labels, _, value_text = rest.rpartition("}")
        try:
            value = float(value_text.split()[0])
        except (ValueError, IndexError):
            continue
        name = name.strip()
        if name == "vllm:num_requests_waiting":
            waiting += value
        elif name == "vllm:num_requests_running":
            running += value
        elif name == "vllm:lora_requests_info" and value >= lora_stamp:
            lora_stamp = value
            adapters = frozenset(a for a in _label(labels, "running_lora_adapters").split(",") if a)
        elif (counter := _COUNTERS.get(name)) is not None:
            sums[counter] += value
    return EngineLoad(
        waiting=int(waiting),
        running=int(running),
        running_adapters=adapters,
        counters=EngineCounters(**sums),
    )


def _label(labels: str, key: str) -> str:
    marker = f'{key}="'
    start = labels.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    end = labels.find('"', start)
    return labels[start:end] if end >= 0 else ""
