"""Two engines behind one API for the conformance suite: the simulator and real vLLM.

Both serve the model name `tiny` with max_model_len 512, max_loras 2, max_lora_rank 8. The
real one is vLLM 0.32 on CPU with the tiny random Llama from tests/support/tiny_model.py,
started once per session; the simulator runs as a real process with the `tiny` profile.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.conformance import MAX_LORA_RANK, MAX_LORAS, MAX_MODEL_LEN, MODEL, Engine
from tests.support.simulator import running_sim_process
from tests.support.tiny_model import TinyModel, build_lora_adapter, build_tiny_model_with_adapters
from tests.support.vllm_server import running_vllm


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    root = tmp_path_factory.mktemp("tiny-model")
    model = build_tiny_model_with_adapters(root, ["alpha", "beta"], rank=MAX_LORA_RANK)
    big = build_lora_adapter(model, root / "adapters" / "too-big", rank=16, seed=9)
    return TinyModel(path=model.path, adapters={**model.adapters, "too-big": big})


@pytest.fixture(scope="session")
def vllm_engine(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    with running_vllm(
        tiny_model.path,
        log_path=log,
        served_model_name=MODEL,
        max_loras=MAX_LORAS,
        max_lora_rank=MAX_LORA_RANK,
        max_model_len=MAX_MODEL_LEN,
    ) as server:
        yield Engine("vllm", server.base_url, MODEL, tiny_model.adapters)


@pytest.fixture(scope="session")
def simulator_engine(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    args = [
        "--served-model-name", MODEL,
        "--max-loras", str(MAX_LORAS),
        "--max-lora-rank", str(MAX_LORA_RANK),
        "--max-model-len", str(MAX_MODEL_LEN),
        "--profile", "tiny",
        "--seed", "0",
    ]  # fmt: skip
    with running_sim_process(args, log_path=log) as sim:
        yield Engine("simulator", sim.urls[0], MODEL, tiny_model.adapters)


@pytest.fixture(params=["simulator", "vllm"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each conformance check runs against both engines."""
    value: Engine = request.getfixturevalue(f"{request.param}_engine")
    return value


@pytest.fixture(scope="session")
def vllm_tools_engine(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """Real vLLM as the embedded default runs it for tools (examples/embedded/model.yaml:
    `toolCallParser: hermes`), so forced tool calls come back parsed; with compact JSON, so
    the random model constrained to a call cannot spend its tokens on whitespace. A second
    server: the parser changes how plain chat streams end, which the other checks compare."""
    log = tmp_path_factory.mktemp("vllm-tools") / "vllm.log"
    with running_vllm(
        tiny_model.path,
        log_path=log,
        served_model_name=MODEL,
        max_loras=MAX_LORAS,
        max_lora_rank=MAX_LORA_RANK,
        max_model_len=MAX_MODEL_LEN,
        extra_args=(
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "hermes",
            "--structured-outputs-config",
            '{"backend": "xgrammar", "disable_any_whitespace": true}',
        ),
    ) as server:
        yield Engine("vllm", server.base_url, MODEL, tiny_model.adapters)


@pytest.fixture(params=["simulator", "vllm_tools"])
def tools_engine(request: pytest.FixtureRequest) -> Engine:
    """Each tool-call check runs against the simulator and vLLM with the tool parser."""
    value: Engine = request.getfixturevalue(f"{request.param}_engine")
    return value
