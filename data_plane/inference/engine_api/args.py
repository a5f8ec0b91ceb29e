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
- Tracing: with the `OTEL_*` variables asking for OTLP export, vLLM's own
  (`--otlp-traces-endpoint`, `control_plane.api.tracing.engine_tracing`), unless
  `engineArgs` names the endpoint itself.
- `engineArgs` pass through, except flags that would break the pod (refused) and flags the
  spec owns (refused, naming the spec field to use instead).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from control_plane.api.model import ModelSpec
from control_plane.api.tracing import engine_tracing

# Flags the pod sets itself: changing them would make the engine unreachable or unroutable.
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

# Flags a spec field owns.
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
}

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


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def check_engine_args(engine_args: list[str]) -> None:
    """Refuse flags that would break the pod or that a spec field owns; name the fix."""
    for arg in engine_args:
        name = _flag_name(arg)
        if name in BREAKS_THE_POD:
            raise EngineArgsError(f"engineArgs: {name} is not allowed: {BREAKS_THE_POD[name]}")
        if name in OWNED_BY_SPEC:
            raise EngineArgsError(f"engineArgs: {name} is set from {OWNED_BY_SPEC[name]}")
    if engine_args and not engine_args[0].startswith("-"):
        raise EngineArgsError(
            f"engineArgs: {engine_args[0]!r} is a positional argument; the model comes"
            " from spec.source"
        )


def _gib(value: float) -> str:
    return f"{value:g}"


def _tracing(spec: ModelSpec, otel: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    try:
        argv, env = engine_tracing(otel)
    except ValueError as exc:  # an OTEL_* value Hoist cannot honour
        raise EngineArgsError(str(exc)) from None
    if argv and any(_flag_name(a) == argv[0] for a in spec.engine_args):
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
    if not any(_flag_name(a) == QUIET_ENDPOINTS_FLAG for a in spec.engine_args):
        argv += [QUIET_ENDPOINTS_FLAG, QUIET_ENDPOINTS]
    tracing_argv, tracing_env = _tracing(spec, otel or {})
    argv += tracing_argv
    env.update(tracing_env)
    argv += spec.engine_args
    return EngineLaunch(argv=argv, env=env, needs_lmcache=needs_lmcache)
