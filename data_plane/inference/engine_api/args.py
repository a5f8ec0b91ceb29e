"""A `Model` spec -> the vLLM command line and environment (pure).

Targets vLLM 0.32's OpenAI server (`python -m vllm.entrypoints.openai.api_server`):
- LoRA: `--enable-lora --max-loras --max-lora-rank [--max-cpu-loras]`, and
  `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` so the sidecar may load adapters at runtime.
- Tensor parallelism follows `resources.gpus`; `--gpu-memory-utilization` applies on GPUs.
  On CPU (`gpus: 0`) the KV cache size comes from `VLLM_CPU_KVCACHE_SPACE` and the engine
  runs eagerly.
- KV cache tiers: a CPU tier alone uses vLLM's native offloading
  (`--kv-offloading-size GiB --kv-offloading-backend native`); a disk or remote tier needs
  LMCache (`--kv-transfer-config` with `LMCacheConnectorV1`, configured by `LMCACHE_*`
  variables), which then holds the CPU tier too.
- What the replicas serve: `task: embed` runs the pooling runner (`--runner pooling`);
  `toolCallParser` turns on `tool_choice: auto` (`--enable-auto-tool-choice
  --tool-call-parser`); `reasoningParser` and `chatTemplate` map to their flags.
- On CPU the engine also runs with `TORCHDYNAMO_DISABLE=1` unless `engineArgs` ask for
  compilation: vLLM torch.compiles a few sampler helpers lazily even with
  `--enforce-eager`, and the first request with `logprobs` waited ~15 s for inductor.
- Tracing: with the `OTEL_*` variables asking for OTLP export, vLLM's own
  (`--otlp-traces-endpoint`, `control_plane.api.tracing.engine_tracing`), unless
  `engineArgs` names the endpoint itself.
- `engineArgs` pass through, except flags that would break the pod (refused) and flags the
  spec owns (refused, naming the spec field to use instead); the spec model refuses them
  too (`control_plane.api.engine_options`), so a bad Model fails at `kubectl apply`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from control_plane.api.engine_options import (
    BREAKS_THE_POD,
    OWNED_BY_SPEC,
    EngineTask,
    engine_args_problem,
    flag_name,
)
from control_plane.api.model import ModelSpec
from control_plane.api.tracing import engine_tracing

__all__ = [
    "BREAKS_THE_POD",
    "OWNED_BY_SPEC",
    "EngineArgsError",
    "EngineLaunch",
    "build_launch",
    "check_engine_args",
]

LMCACHE_CONNECTOR = "LMCacheConnectorV1"
# The supervisor and the sidecar poll these; their access logs would drown the rest.
QUIET_ENDPOINTS_FLAG = "--disable-access-log-for-endpoints"
QUIET_ENDPOINTS = "/health,/metrics,/v1/models"


class EngineArgsError(ValueError):
    """`engineArgs` (or the spec) asks for something the pod cannot run with."""


@dataclass(frozen=True)
class EngineLaunch:
    argv: list[str]
    """Arguments after `python -m vllm.entrypoints.openai.api_server`."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to the engine's environment."""
    needs_lmcache: bool = False


def check_engine_args(engine_args: list[str]) -> None:
    """Refuse flags that would break the pod or that a spec field owns; name the fix."""
    problem = engine_args_problem(engine_args)
    if problem is not None:
        raise EngineArgsError(problem)


# Compilation flags: with one of them the user asks for torch.compile on CPU too.
COMPILATION_FLAGS = ("--compilation-config", "-O", "-cc")


def _compiles(engine_args: list[str]) -> bool:
    return any(
        flag_name(a) in COMPILATION_FLAGS
        or (a.startswith("-O") and len(a) > 2 and a[2:3].isdigit())
        for a in engine_args
    )


def _serving_args(spec: ModelSpec) -> list[str]:
    """What the replicas serve: the runner, tool calling, reasoning, the chat template."""
    argv: list[str] = []
    if spec.task is EngineTask.EMBED:
        # `--convert auto`: an embedding checkpoint is served as it is, a generative one
        # (e.g. a *ForCausalLM) is pooled into embeddings.
        argv += ["--runner", "pooling"]
    if spec.tool_call_parser is not None:
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", spec.tool_call_parser]
    if spec.reasoning_parser is not None:
        argv += ["--reasoning-parser", spec.reasoning_parser]
    if spec.chat_template is not None:
        argv += ["--chat-template", spec.chat_template]
    return argv


def _gib(value: float) -> str:
    return f"{value:g}"


def _tracing(spec: ModelSpec, otel: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    try:
        argv, env = engine_tracing(otel)
    except ValueError as exc:  # an OTEL_* value Hoist cannot honour
        raise EngineArgsError(str(exc)) from None
    if argv and any(flag_name(a) == argv[0] for a in spec.engine_args):
        return [], {}  # engineArgs names its own endpoint
    return argv, env


def build_launch(
    spec: ModelSpec,
    *,
    model_path: str,
    served_name: str,
    host: str,
    port: int,
    cpu_kvcache_gib: float = 1,
    otel: Mapping[str, str] | None = None,
) -> EngineLaunch:
    """The engine's argv and environment for `spec`, with the weights at `model_path`;
    `otel`: the launcher's environment, whose `OTEL_*` variables say whether vLLM traces."""
    check_engine_args(spec.engine_args)
    lora = spec.lora
    argv = [
        "--model", model_path,
        "--served-model-name", served_name,
        "--host", host,
        "--port", str(port),
        "--enable-lora",
        "--max-loras", str(lora.max_loras),
        "--max-lora-rank", str(lora.max_lora_rank),
    ]  # fmt: skip
    if lora.max_cpu_loras is not None:
        argv += ["--max-cpu-loras", str(lora.max_cpu_loras)]
    if spec.max_model_len is not None:
        argv += ["--max-model-len", str(spec.max_model_len)]
    argv += _serving_args(spec)
    env = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    gpus = spec.resources.gpus
    kv = spec.kv_cache
    if gpus > 0:
        argv += ["--gpu-memory-utilization", _gib(kv.gpu_memory_utilization)]
        if gpus > 1:
            argv += ["--tensor-parallel-size", str(gpus)]
    else:
        env["VLLM_CPU_KVCACHE_SPACE"] = _gib(cpu_kvcache_gib)
        if "--enforce-eager" not in spec.engine_args:
            argv.append("--enforce-eager")
        if not _compiles(spec.engine_args):
            # The model runs eagerly on CPU, but vLLM still torch.compiles a few sampler
            # helpers lazily: the first request with `logprobs` waited ~15 s for inductor.
            env["TORCHDYNAMO_DISABLE"] = "1"
    needs_lmcache = kv.disk is not None or kv.remote is not None
    if needs_lmcache:
        argv += [
            "--kv-transfer-config",
            json.dumps({"kv_connector": LMCACHE_CONNECTOR, "kv_role": "kv_both"}),
        ]
        env["LMCACHE_CHUNK_SIZE"] = "256"
        env["LMCACHE_LOCAL_CPU"] = "True" if kv.cpu_offload_gib > 0 else "False"
        env["LMCACHE_MAX_LOCAL_CPU_SIZE"] = _gib(kv.cpu_offload_gib)
        if kv.disk is not None:
            env["LMCACHE_LOCAL_DISK"] = f"file://{kv.disk.path.rstrip('/')}/"
            env["LMCACHE_MAX_LOCAL_DISK_SIZE"] = _gib(kv.disk.size_gib)
        if kv.remote is not None:
            env["LMCACHE_REMOTE_URL"] = kv.remote.url
    elif kv.cpu_offload_gib > 0:
        argv += [
            "--kv-offloading-size", _gib(kv.cpu_offload_gib),
            "--kv-offloading-backend", "native",
        ]  # fmt: skip
    if not any(flag_name(a) == QUIET_ENDPOINTS_FLAG for a in spec.engine_args):
        argv += [QUIET_ENDPOINTS_FLAG, QUIET_ENDPOINTS]
    tracing_argv, tracing_env = _tracing(spec, otel or {})
    argv += tracing_argv
    env.update(tracing_env)
    argv += spec.engine_args
    return EngineLaunch(argv=argv, env=env, needs_lmcache=needs_lmcache)
