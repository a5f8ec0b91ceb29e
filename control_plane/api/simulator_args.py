"""The simulator's command line for a `Model` with `engine: sim`: one rendering for the
model manager's pod template and for `hoist up`'s local process.

A Model whose `routingPolicy` is `precise-prefix` gets `--kv-events-config`: the engine
publishes its KV-cache events over ZMQ on its port + `KV_EVENTS_PORT_OFFSET`, where the
gateway looks for them (the port convention, data_plane/gateway/kv_events/follower.py)."""

from __future__ import annotations

import json

from control_plane.api.constants import KV_EVENTS_PORT_OFFSET
from control_plane.api.engine_options import EngineTask
from control_plane.api.model import EngineKind, Model, RoutingPolicy

NO_KV_EVENTS = (
    "routingPolicy precise-prefix reads the engines' KV-cache events, and engine {engine}"
    " publishes none to the gateway yet (docs/kv-events.md): requests are routed as with"
    " routingPolicy default"
)


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
    if publishes_kv_events(model):
        argv += ["--kv-events-config", kv_events_config(port)]
    return argv


def publishes_kv_events(model: Model) -> bool:
    """Whether the Model's engines publish KV-cache events (`precise-prefix` simulators)."""
    spec = model.spec
    return spec.routing_policy is RoutingPolicy.PRECISE_PREFIX and spec.engine is EngineKind.SIM


def kv_events_problem(model: Model) -> str | None:
    """Why a `precise-prefix` Model would not be routed by KV-cache events; None when it is
    (or when it does not ask to be)."""
    if model.spec.routing_policy is not RoutingPolicy.PRECISE_PREFIX or publishes_kv_events(model):
        return None
    return NO_KV_EVENTS.format(engine=model.spec.engine.value)


def kv_events_config(port: int) -> str:
    """vLLM's `--kv-events-config` for an engine on `port`: ZMQ on `port` + the offset
    (`*`: the simulator binds it where it serves HTTP)."""
    config = {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": f"tcp://*:{port + KV_EVENTS_PORT_OFFSET}",
    }
    return json.dumps(config, separators=(",", ":"))
