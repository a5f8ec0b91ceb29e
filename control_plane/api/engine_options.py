"""What a `Model` may ask of the vLLM engine beyond the spec's own fields (pure).

Targets vLLM 0.32 (the version Hoist installs). The parser names are that version's
registries (`vllm.tool_parsers.ToolParserManager`, `vllm.reasoning.ReasoningParserManager`);
a unit test checks them against the installed vLLM, so an upgrade that renames one fails
there first. `engineArgs` pass through to vLLM except the flags below: those that would
break the pod, and those a spec field owns (the message names the field to use instead).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class EngineTask(StrEnum):
    GENERATE = "generate"
    """Chat and text completions (vLLM's generate runner)."""
    EMBED = "embed"
    """Embeddings (vLLM's pooling runner; a generative checkpoint is converted to embed)."""


ToolCallParser = Literal[
    "apertus", "cohere_command3", "cohere_command4", "deepseek_v3", "deepseek_v31",
    "deepseek_v32", "deepseek_v4", "deepseek_v41", "dots", "ernie45", "functiongemma",
    "gemma4", "gigachat3", "glm45", "glm47", "granite", "granite-20b-fc", "granite4",
    "hermes", "hf", "hunyuan_a13b", "hy_v3", "hy_v4", "inkling", "internlm", "jamba",
    "k2_horizon", "kimi_k2", "kimi_k3", "lfm2", "ling3", "llama3_json", "llama4_json",
    "llama4_pythonic", "longcat", "mimo", "minicpm5", "minimax_m2", "minimax_m3", "mistral",
    "muse_glimmer", "olmo3", "openai", "phi4_mini_json", "plamo3", "poolside_v1",
    "pythonic", "qwen3_coder", "qwen3_json", "qwen3_xml", "seed_oss", "step3", "step3p5",
    "xlam",
]  # fmt: skip
TOOL_CALL_PARSERS: tuple[str, ...] = get_args(ToolCallParser)

ReasoningParser = Literal[
    "cohere_command3", "cohere_command4", "deepseek_r1", "deepseek_v3", "deepseek_v4",
    "deepseek_v41", "ernie45", "gemma4", "glm45", "glm47", "granite",
    "granite_thinking_parser", "hf", "holo2", "hunyuan_a13b", "hy_v3", "hy_v4", "inkling",
    "k2_horizon", "kimi_k2", "kimi_k3", "ling3", "mimo", "minicpmv", "minimax_m2",
    "minimax_m2_append_think", "minimax_m3", "mistral", "muse_glimmer", "nemotron_v3",
    "olmo3", "openai_gptoss", "plamo3", "poolside_v1", "qwen3", "seed_oss", "step3",
    "step3p5",
]  # fmt: skip
REASONING_PARSERS: tuple[str, ...] = get_args(ReasoningParser)

MAX_ENGINE_ARGS = 64
"""Most `engineArgs` entries a Model may carry."""
MAX_ENGINE_ARG_LENGTH = 4096
"""Longest single `engineArgs` entry (a JSON config such as `--speculative-config`)."""
MAX_CHAT_TEMPLATE_LENGTH = 65536
"""Longest inline `chatTemplate`."""

BREAKS_THE_POD: dict[str, str] = {
    "--host": "the pod chooses where the engine listens",
    "--port": "the pod chooses where the engine listens",
    "--uds": "the engine must listen on TCP for the sidecar and the gateway",
    "--model": "set spec.source instead",
    "--served-model-name": "the model is served under metadata.name",
    "--api-key": "the sidecar and the gateway call the engine without a key",
    "--ssl-keyfile": "the gateway speaks plain HTTP to the engine inside the pod network",
    "--ssl-certfile": "the gateway speaks plain HTTP to the engine inside the pod network",
    "--ssl-ca-certs": "the gateway speaks plain HTTP to the engine inside the pod network",
    "--root-path": "the gateway and the sidecar call the engine's routes at the root",
    "--disable-log-stats": "the engine's metrics feed the autoscaler and the dashboards",
    "--headless": "the pod needs the engine's API server",
}
"""Flags the pod sets itself: changing them would make the engine unreachable or unroutable."""

OWNED_BY_SPEC: dict[str, str] = {
    "--max-loras": "spec.lora.maxLoras",
    "--max-lora-rank": "spec.lora.maxLoraRank",
    "--max-cpu-loras": "spec.lora.maxCpuLoras",
    "--max-model-len": "spec.maxModelLen",
    "--tensor-parallel-size": "spec.resources.gpus",
    "-tp": "spec.resources.gpus",
    "--gpu-memory-utilization": "spec.kvCache.gpuMemoryUtilization",
    "--kv-offloading-size": "spec.kvCache.cpuOffloadGiB",
    "--kv-offloading-backend": "spec.kvCache",
    "--kv-transfer-config": "spec.kvCache.disk / spec.kvCache.remote",
    "--enable-auto-tool-choice": "spec.toolCallParser",
    "--tool-call-parser": "spec.toolCallParser",
    "--chat-template": "spec.chatTemplate",
    "--reasoning-parser": "spec.reasoningParser",
    "--runner": "spec.task",
    "--convert": "spec.task",
    "--task": "spec.task",
}
"""Flags a spec field owns."""


def flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def engine_args_problem(engine_args: list[str]) -> str | None:
    """Why `engine_args` cannot be passed to the engine (naming the fix), or None."""
    if engine_args and not engine_args[0].startswith("-"):
        return (
            f"engineArgs: {engine_args[0]!r} is a positional argument; the model comes"
            " from spec.source"
        )
    for arg in engine_args:
        name = flag_name(arg)
        if name in BREAKS_THE_POD:
            return f"engineArgs: {name} is not allowed: {BREAKS_THE_POD[name]}"
        if name in OWNED_BY_SPEC:
            return f"engineArgs: {name} is set from {OWNED_BY_SPEC[name]}"
    return None


def engine_args_cel_rule() -> str:
    """The same deny-list as one CEL rule on the `engineArgs` list (for the CRD)."""
    names = sorted({*BREAKS_THE_POD, *OWNED_BY_SPEC})
    alternatives = "|".join(name.lstrip("-") for name in names)
    return f"self.all(a, !a.matches('^--?({alternatives})(=.*)?$'))"
