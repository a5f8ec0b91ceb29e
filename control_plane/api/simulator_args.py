"""The simulator's command line for a `Model` with `engine: sim`: one rendering for the
model manager's pod template and for `hoist up`'s local process.

A Model whose `routingPolicy` is `precise-prefix` gets `--kv-events-config`: the engine
publishes its KV-cache events over ZMQ on its port + `KV_EVENTS_PORT_OFFSET`, where the
gateway looks for them (the port convention, data_plane/gateway/kv_events/follower.py)."""

from __future__ import annotations

import json

from control_plane.api.constants import KV_EVENTS_PORT_OFFSET
from control_plane.api.engine_options import EngineTask
from control_plane.api.model import Model, RoutingPolicy


def simulator_argv(model: Model, *, python: str, host: str, port: int) -> list[str]:
    """`python -m data_plane.inference.simulator ...` serving `model` on `host:port`."""
    spec = model.spec
    argv = [
        python, "-m", "data_plane.inference.simulator",
        "--host", host,
        "--port", str(port),
        "--served-model-name", model.metadata.name,
        "--max-loras", str(spec.lora.max_loras),
        "--max-lora-rank", str(spec.lora.max_lora_rank),
    ]  # fmt: skip
    if spec.max_model_len is not None:
        argv += ["--max-model-len", str(spec.max_model_len)]
    if spec.task is EngineTask.EMBED:
        argv += ["--runner", "pooling"]  # as vLLM: an embedding model serves /v1/embeddings
    if spec.routing_policy is RoutingPolicy.PRECISE_PREFIX:
        argv += ["--kv-events-config", kv_events_config(port)]
    return argv


def kv_events_config(port: int) -> str:
    """vLLM's `--kv-events-config` for an engine on `port`: ZMQ on `port` + the offset."""
    config = {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": f"tcp://*:{port + KV_EVENTS_PORT_OFFSET}",
    }
    return json.dumps(config, separators=(",", ":"))
