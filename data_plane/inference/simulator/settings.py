"""The simulator process's settings and command line.

    python -m data_plane.inference.simulator --host 127.0.0.1 --port P \\
        --served-model-name NAME --max-loras N --max-lora-rank R [--max-model-len L] \\
        --seed I [--profile NAME] [--time-scale X] [--runner pooling --embedding-dim D]
    python -m data_plane.inference.simulator --replicas N --base-port P ...   # N engines

Flags take precedence over `HOIST_SIM_*` environment variables. Flags named like vLLM's
(`--model`, `--enable-lora`, `--max-num-seqs`, `--num-gpu-blocks-override`, `--block-size`,
`--max-num-batched-tokens`, `--enable-prefix-caching`, `--kv-events-config`) mean what they
mean to vLLM.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_plane.inference.simulator.kv_events import KvEventsConfig
from data_plane.inference.simulator.profiles import DEFAULT_PROFILE, builtin_profiles


class SimulatorSettings(BaseSettings):
    """Settings of one simulator process (one or more engines)."""

    model_config = SettingsConfigDict(env_prefix="HOIST_SIM_", extra="forbid")

    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = Field(default=8000, ge=0, le=65535)
    """Port of the engine when `replicas` is 1."""
    base_port: int | None = Field(default=None, ge=1, le=65535)
    """First port when `replicas` > 1 (engines listen on base_port .. base_port+replicas-1)."""
    replicas: int = Field(default=1, ge=1, le=1024)
    """How many engines this process runs."""
    served_model_name: str = Field(default="sim-model", min_length=1)
    """The model id the engines answer to."""
    max_loras: int = Field(default=1, ge=1)
    """Adapters that can run in one step (GPU LoRA slots)."""
    max_lora_rank: int = Field(default=16, ge=1)
    """Largest adapter rank `/v1/load_lora_adapter` accepts."""
    enable_lora: bool = True
    """Serve adapters (always on unless disabled; vLLM needs --enable-lora)."""
    max_model_len: int | None = Field(default=None, ge=2)
    """Context length (default: the profile's)."""
    seed: int = 0
    """Seed of the generated text."""
    profile: str = DEFAULT_PROFILE
    """Latency profile (see docs/simulator.md)."""
    time_scale: float = Field(default=1.0, gt=0.0, le=10_000.0)
    """Simulated seconds per wall second (10 runs ten times faster than real time)."""
    num_gpu_blocks_override: int | None = Field(default=None, ge=1)
    block_size: int | None = Field(default=None, ge=1, le=1024)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    enable_prefix_caching: bool = True
    accept_missing_lora_paths: bool = False
    """Load adapters whose lora_path does not exist (vLLM answers 404) - for fleet tests."""
    stamp_chunks: bool = False
    """Add `hoist_sent_ns` (the host's monotonic clock, ns) to each streamed chunk as it is
    written, so a benchmark on the same host can tell what a proxy adds to the inter-token
    latency from the engine's own timing. Not a vLLM field: off unless asked for."""
    runner: Literal["generate", "pooling"] = "generate"
    """vLLM's `--runner`: `generate` serves chat, completions and responses; `pooling` an
    embedding model, serving `/v1/embeddings` only (as vLLM does)."""
    embedding_dim: int = Field(default=64, ge=1, le=65536)
    """Length of the vectors a pooling model returns (the model's hidden size)."""
    kv_events_config: KvEventsConfig | None = None
    """vLLM's `--kv-events-config` (JSON): publish BlockStored/BlockRemoved/AllBlocksCleared
    batches over ZMQ as vLLM does (docs/simulator.md, "KV-cache events")."""
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> SimulatorSettings:
        if self.profile not in builtin_profiles():
            choices = ", ".join(sorted(builtin_profiles()))
            raise ValueError(f"unknown profile {self.profile!r}; choose one of: {choices}")
        if self.replicas > 1 and self.base_port is None:
            raise ValueError("--replicas > 1 needs --base-port")
        if self.base_port is not None and self.base_port + self.replicas - 1 > 65535:
            raise ValueError("--base-port + --replicas - 1 exceeds 65535")
        return self

    def ports(self) -> list[int]:
        """The port of each engine."""
        if self.base_port is None:
            return [self.port]
        return [self.base_port + i for i in range(self.replicas)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_plane.inference.simulator",
        description="Simulated vLLM engines: vLLM's API and metrics with a latency model.",
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add("--host", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, help="port of a single engine (default 8000)")
    add("--base-port", type=int, help="first port when running several engines")
    add("--replicas", type=int, help="engines in this process (default 1)")
    add("--served-model-name", help="model id the engines serve")
    add("--model", help="vLLM's --model; used as the served name when that is not given")
    add("--max-loras", type=int, help="adapters per step / GPU LoRA slots (default 1)")
    add("--max-lora-rank", type=int, help="largest adapter rank accepted (default 16)")
    add("--enable-lora", action="store_true", help="accepted for vLLM compatibility (on)")
    add("--disable-lora", dest="enable_lora", action="store_false", help="serve no adapters")
    add("--max-model-len", type=int, help="context length (default: the profile's)")
    add("--seed", type=int, help="seed of the generated text (default 0)")
    choices = sorted(builtin_profiles())
    add("--profile", choices=choices, help=f"latency profile (default {DEFAULT_PROFILE})")
    add("--time-scale", type=float, help="simulated seconds per wall second (default 1)")
    add("--num-gpu-blocks-override", type=int, help="KV cache size in blocks")
    add("--block-size", type=int, help="tokens per KV block (default 16)")
    add("--max-num-seqs", type=int, help="sequences per step")
    add("--max-num-batched-tokens", type=int, help="token budget per step")
    add(
        "--enable-prefix-caching",
        action=argparse.BooleanOptionalAction,
        help="prefix caching (default on)",
    )
    add(
        "--accept-missing-lora-paths",
        action="store_true",
        help="load adapters whose path does not exist (vLLM would answer 404)",
    )
    add(
        "--stamp-chunks",
        action="store_true",
        help="add hoist_sent_ns (monotonic clock) to streamed chunks, for latency benchmarks",
    )
    add(
        "--runner",
        choices=("generate", "pooling"),
        help="vLLM's --runner: generate (default) or pooling (an embedding model)",
    )
    add("--embedding-dim", type=int, help="vector length of a pooling model (default 64)")
    add(
        "--kv-events-config",
        type=json.loads,
        help='vLLM\'s KV-cache events, e.g. \'{"enable_kv_cache_events": true, "endpoint": "tcp://*:5557"}\'',
    )
    add("--log-level", help="logging level (default INFO)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> SimulatorSettings:
    """Settings from the command line (and HOIST_SIM_* variables). Exits 2 on bad input."""
    parser = _parser()
    values: dict[str, Any] = vars(parser.parse_args(argv))
    model = values.pop("model", None)
    if model is not None and "served_model_name" not in values:
        values["served_model_name"] = model
    try:
        return SimulatorSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        parser.error(problems)
