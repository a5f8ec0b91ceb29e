"""The `Model` resource: a base model to serve, how many replicas, and how to run them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from control_plane.api.common import Condition, ObjectMeta, Strict
from control_plane.api.engine_options import (
    MAX_CHAT_TEMPLATE_LENGTH,
    MAX_ENGINE_ARG_LENGTH,
    MAX_ENGINE_ARGS,
    EngineTask,
    ReasoningParser,
    ToolCallParser,
    engine_args_problem,
)


class EngineKind(StrEnum):
    VLLM = "vllm"
    """The real vLLM engine (GPU build in clusters, CPU build in the embedded default)."""
    SIM = "sim"
    """Hoist's vLLM-compatible simulator, for tests and fleet-scale benchmarks."""


class RoutingPolicy(StrEnum):
    DEFAULT = "default"
    ROUND_ROBIN = "round-robin"
    LEAST_LOAD = "least-load"
    PREFIX_AFFINITY = "prefix-affinity"
    LORA_AFFINITY = "lora-affinity"
    PRECISE_PREFIX = "precise-prefix"
    """Route by the engines' own KV-cache events (docs/kv-events.md); `engine: sim` only
    publishes them for now."""


class Resources(Strict):
    gpus: Annotated[int, Field(ge=0, le=64)] = 0
    """GPUs per replica; the engine's tensor-parallel size follows it. 0 runs on CPU."""
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
    """Memory request and limit per replica, as a Kubernetes quantity (e.g. `24Gi`)."""
    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    """CPU request per replica, as a Kubernetes quantity (e.g. `4` or `500m`)."""


class LoraLimits(Strict):
    max_loras: Annotated[int, Field(ge=1, le=256)] = 4
    """Adapters resident on the accelerator at once (vLLM `--max-loras`)."""
    max_lora_rank: Literal[8, 16, 32, 64, 128, 256, 320, 512] = 16
    """Largest adapter rank accepted (vLLM `--max-lora-rank`)."""
    max_cpu_loras: Annotated[int, Field(ge=1, le=4096)] | None = None
    """Adapters cached in host memory (vLLM `--max-cpu-loras`); at least `maxLoras`."""

    @model_validator(mode="after")
    def _cpu_cache_holds_the_active_set(self) -> Self:
        if self.max_cpu_loras is not None and self.max_cpu_loras < self.max_loras:
            raise ValueError("maxCpuLoras must be at least maxLoras")
        return self


class DiskTier(Strict):
    path: str = Field(min_length=1)
    """Directory for KV blocks spilled from CPU memory."""
    size_gib: Annotated[float, Field(gt=0)]


class RemoteTier(Strict):
    url: str = Field(pattern=r"^(redis|rediss|lm|tcp|http|https)://.+")
    """A shared KV store (e.g. an LMCache server or Redis) reachable by every replica."""


class KVCache(Strict):
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    """Share of accelerator memory vLLM may take for weights and KV cache."""
    cpu_offload_gib: Annotated[float, Field(ge=0)] = 0
    """KV cache offloaded to host memory, in GiB (0: none)."""
    disk: DiskTier | None = None
    remote: RemoteTier | None = None


class Autoscaling(Strict):
    enabled: bool = False
    target_concurrency: Annotated[float, Field(gt=0)] = 8
    """In-flight requests per replica the autoscaler aims for."""
    stable_window_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    panic_window_seconds: Annotated[int, Field(ge=1, le=3600)] = 6
    scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 300
    """How long demand must stay low before replicas are removed."""
    scale_to_zero_after_seconds: Annotated[int, Field(ge=0, le=86400)] | None = None
    """Idle time after which a model with `minReplicas: 0` goes to zero; unset: never."""
    max_scale_up_step: Annotated[int, Field(ge=1)] = 4
    max_scale_down_step: Annotated[int, Field(ge=1)] = 1
    target_kv_cache_usage: Annotated[float, Field(gt=0, le=1)] = 0.9
    """KV-cache usage per replica the autoscaler aims for (a second load signal, 0..1]."""
    target_ttft_seconds: Annotated[float, Field(gt=0)] | None = None
    """When set, a mean time to first token above it while requests wait scales up fast."""

    @model_validator(mode="after")
    def _panic_window_is_shorter(self) -> Self:
        if self.panic_window_seconds > self.stable_window_seconds:
            raise ValueError("panicWindowSeconds must not exceed stableWindowSeconds")
        return self


class ModelSpec(Strict):
    source: str = Field(min_length=1)
    """Where the weights are: a local path, a URI, or a Hugging Face style id."""
    engine: EngineKind = EngineKind.VLLM
    """`vllm` runs the real engine; `sim` the simulator (no weights needed)."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Replicas to run; with autoscaling, where it starts."""
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 0
    """Fewest replicas the autoscaler keeps; 0 allows scaling to zero."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 1000
    """Most replicas the autoscaler may run."""
    max_model_len: Annotated[int, Field(ge=16)] | None = None
    """Context length (prompt plus output tokens); unset: the model's own."""
    resources: Resources = Field(default_factory=Resources)
    """What each replica asks of its node."""
    lora: LoraLimits = Field(default_factory=LoraLimits)
    """How many adapters, of what rank, each replica can hold."""
    kv_cache: KVCache = Field(default_factory=KVCache)
    """The KV cache's tiers: accelerator memory, host memory, disk, a remote store."""
    task: EngineTask = EngineTask.GENERATE
    """What the replicas serve: `generate` (chat and completions) or `embed` (embeddings,
    vLLM's pooling runner; a generative checkpoint is pooled into an embedding model)."""
    tool_call_parser: ToolCallParser | None = None
    """vLLM's parser for the model's tool-call format (e.g. `hermes` for `<tool_call>` JSON):
    set, `tool_choice` `auto` works (vLLM `--enable-auto-tool-choice --tool-call-parser`);
    unset, the engine refuses requests with `tool_choice: auto`. Pick the one that matches
    the chat template's tool format."""
    reasoning_parser: ReasoningParser | None = None
    """vLLM's parser that splits a reasoning model's thinking from its answer
    (`--reasoning-parser`, e.g. `deepseek_r1`, `qwen3`)."""
    chat_template: str | None = Field(
        default=None, min_length=1, max_length=MAX_CHAT_TEMPLATE_LENGTH
    )
    """A Jinja chat template (the template's text) replacing the one shipped with the
    weights (`--chat-template`), e.g. to render `tools` for a model whose own template
    ignores them."""
    engine_args: list[Annotated[str, Field(min_length=1, max_length=MAX_ENGINE_ARG_LENGTH)]] = (
        Field(default_factory=list, max_length=MAX_ENGINE_ARGS)
    )
    """Extra engine flags, e.g. `--enable-prefix-caching`; flags that would break the pod
    (ports, host, model path) and flags a spec field owns are refused."""
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    """Whether and how replicas follow demand (off: `replicas` is fixed)."""
    routing_policy: RoutingPolicy = RoutingPolicy.DEFAULT
    """How the gateway picks a replica for each request."""
    tenant: str | None = Field(default=None, min_length=1, max_length=63)
    """When set, only this tenant may route to the model."""

    @field_validator("engine_args")
    @classmethod
    def _engine_args_allowed(cls, value: list[str]) -> list[str]:
        problem = engine_args_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _parsers_need_generation(self) -> Self:
        if self.task is EngineTask.EMBED and (self.tool_call_parser or self.reasoning_parser):
            raise ValueError("toolCallParser and reasoningParser need task: generate")
        return self

    @model_validator(mode="after")
    def _replica_bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        if not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError("replicas must lie within [minReplicas, maxReplicas]")
        return self


class ModelPhase(StrEnum):
    PENDING = "Pending"
    LOADING = "Loading"
    READY = "Ready"
    DEGRADED = "Degraded"
    SCALED_TO_ZERO = "ScaledToZero"
    FAILED = "Failed"


class ModelStatus(Strict):
    phase: ModelPhase = ModelPhase.PENDING
    replicas: int = 0
    """Replicas that exist (ready or not)."""
    ready_replicas: int = 0
    desired_replicas: int | None = None
    """What the autoscaler (or the spec) asks for now."""
    scaling_reason: str | None = None
    engine_restarts: int | None = None
    """Restarts of the engine containers of the Model's current pods, as the kubelet counts
    them: a crash, or a failed liveness probe (an engine that stopped answering past the
    sidecar's bound). The `EngineStable` condition says which pod restarted last, and why."""
    conditions: list[Condition] = Field(default_factory=list)
    """`SpecValid`, `Ready`, `Progressing` and `EngineStable`; on a `precise-prefix` Model also
    `KvEventRouting` (False, reason `NoEvents`, where its engine publishes no KV-cache events
    and requests are routed as with `default`)."""
    observed_generation: int | None = None


class Model(Strict):
    api_version: Literal["serving.hoist.dev/v1alpha1"] = "serving.hoist.dev/v1alpha1"
    kind: Literal["Model"] = "Model"
    metadata: ObjectMeta
    spec: ModelSpec
    status: ModelStatus | None = None
