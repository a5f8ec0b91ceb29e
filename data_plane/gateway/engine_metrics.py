"""Read an engine's load from its Prometheus text (vLLM's metric names) (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineLoad:
    waiting: int = 0
    running: int = 0
    running_adapters: frozenset[str] | None = None
    """From `vllm:lora_requests_info` (its newest sample); None when absent."""


def parse_engine_metrics(text: str) -> EngineLoad:
    waiting = 0.0
    running = 0.0
    lora_stamp = -1.0
    adapters: frozenset[str] | None = None
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
    return EngineLoad(waiting=int(waiting), running=int(running), running_adapters=adapters)


def _label(labels: str, key: str) -> str:
    marker = f'{key}="'
    start = labels.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    end = labels.find('"', start)
    return labels[start:end] if end >= 0 else ""
