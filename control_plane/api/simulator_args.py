"""The simulator's command line for a `Model` with `engine: sim`: one rendering for the
model manager's pod template and for `hoist up`'s local process."""

from __future__ import annotations

from control_plane.api.engine_options import EngineTask
from control_plane.api.model import Model


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
    return argv
