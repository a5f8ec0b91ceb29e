from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from control_plane.api.model import ModelSpec
from data_plane.inference.engine_api.args import (
    BREAKS_THE_POD,
    OWNED_BY_SPEC,
    EngineArgsError,
    build_launch,
    check_engine_args,
)


def spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"source": "m", **fields})


def launch(**fields: Any) -> tuple[list[str], dict[str, str]]:
    built = build_launch(spec(**fields), model_path="/models/m", served_name="m", host="h", port=1)
    return built.argv, built.env


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_defaults_on_cpu() -> None:
    argv, env = launch()
    assert argv[:8] == [
        "--model", "/models/m", "--served-model-name", "m", "--host", "h", "--port", "1"
    ]  # fmt: skip
    assert "--enable-lora" in argv
    assert flag(argv, "--max-loras") == "4"
    assert flag(argv, "--max-lora-rank") == "16"
    assert "--max-cpu-loras" not in argv
    assert "--enforce-eager" in argv
    assert "--gpu-memory-utilization" not in argv
    assert env == {
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "TORCHDYNAMO_DISABLE": "1",
    }
    for name in ("--runner", "--enable-auto-tool-choice", "--chat-template", "--reasoning-parser"):
        assert name not in argv


@pytest.mark.parametrize(
    ("fields", "name", "value"),
    [
        pytest.param({"lora": {"maxLoras": 8}}, "--max-loras", "8", id="max-loras"),
        pytest.param({"lora": {"maxLoraRank": 64}}, "--max-lora-rank", "64", id="rank"),
        pytest.param(
            {"lora": {"maxLoras": 2, "maxCpuLoras": 10}}, "--max-cpu-loras", "10", id="cpu-loras"
        ),
        pytest.param({"maxModelLen": 4096}, "--max-model-len", "4096", id="max-model-len"),
        pytest.param(
            {"resources": {"gpus": 1}, "kvCache": {"gpuMemoryUtilization": 0.8}},
            "--gpu-memory-utilization",
            "0.8",
            id="gpu-memory",
        ),
        pytest.param({"resources": {"gpus": 4}}, "--tensor-parallel-size", "4", id="tp-4"),
        pytest.param(
            {"kvCache": {"cpuOffloadGib": 8}}, "--kv-offloading-size", "8", id="cpu-offload"
        ),
    ],
)
def test_spec_fields_become_flags(fields: dict[str, Any], name: str, value: str) -> None:
    argv, _ = launch(**fields)
    assert flag(argv, name) == value


def test_one_gpu_has_no_tensor_parallelism_and_no_cpu_settings() -> None:
    argv, env = launch(resources={"gpus": 1})
    assert "--tensor-parallel-size" not in argv
    assert "--enforce-eager" not in argv
    assert "VLLM_CPU_KVCACHE_SPACE" not in env
    assert "TORCHDYNAMO_DISABLE" not in env


def test_cpu_offload_alone_uses_native_offloading() -> None:
    argv, env = launch(kvCache={"cpuOffloadGib": 2.5})
    assert flag(argv, "--kv-offloading-size") == "2.5"
    assert flag(argv, "--kv-offloading-backend") == "native"
    assert "--kv-transfer-config" not in argv
    assert not any(k.startswith("LMCACHE_") for k in env)


def test_disk_and_remote_tiers_use_lmcache() -> None:
    built = build_launch(
        spec(
            kvCache={
                "cpuOffloadGib": 4,
                "disk": {"path": "/var/kv/", "sizeGib": 100},
                "remote": {"url": "lm://kv:65432"},
            }
        ),
        model_path="/m",
        served_name="m",
        host="h",
        port=1,
    )
    assert built.needs_lmcache
    config = json.loads(flag(built.argv, "--kv-transfer-config") or "")
    assert config == {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}
    assert "--kv-offloading-size" not in built.argv
    assert built.env["LMCACHE_LOCAL_CPU"] == "True"
    assert built.env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "4"
    assert built.env["LMCACHE_LOCAL_DISK"] == "file:///var/kv/"
    assert built.env["LMCACHE_MAX_LOCAL_DISK_SIZE"] == "100"
    assert built.env["LMCACHE_REMOTE_URL"] == "lm://kv:65432"


def test_engine_args_pass_through_last() -> None:
    argv, _ = launch(engineArgs=["--enable-prefix-caching", "--seed=3"])
    assert argv[-2:] == ["--enable-prefix-caching", "--seed=3"]


@pytest.mark.parametrize("name", sorted(BREAKS_THE_POD))
@pytest.mark.parametrize("form", ["separate", "equals"])
def test_flags_that_break_the_pod_are_refused(name: str, form: str) -> None:
    args = [name, "x"] if form == "separate" else [f"{name}=x"]
    with pytest.raises(EngineArgsError, match="not allowed"):
        check_engine_args(args)
    with pytest.raises(ValidationError, match="not allowed"):
        spec(engineArgs=args)


@pytest.mark.parametrize("name", sorted(OWNED_BY_SPEC))
def test_flags_owned_by_the_spec_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(EngineArgsError, match=r"set from spec\."):
        check_engine_args([name, "2"])
    with pytest.raises(ValidationError, match=rf"set from {OWNED_BY_SPEC[name]}"):
        spec(engineArgs=[name, "2"])


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(EngineArgsError, match="positional"):
        check_engine_args(["some/model"])
    with pytest.raises(ValidationError, match="positional"):
        spec(engineArgs=["some/model"])


def test_engine_args_are_bounded() -> None:
    with pytest.raises(ValidationError, match="at most 64"):
        spec(engineArgs=["--seed=1"] * 65)
    with pytest.raises(ValidationError, match="at most 4096"):
        spec(engineArgs=["--x=" + "y" * 4096])
    with pytest.raises(ValidationError, match="at least 1"):
        spec(engineArgs=[""])


def test_tool_call_parser_turns_on_auto_tool_choice() -> None:
    argv, _ = launch(toolCallParser="hermes")
    i = argv.index("--enable-auto-tool-choice")
    assert argv[i + 1 : i + 3] == ["--tool-call-parser", "hermes"]


def test_an_unknown_tool_call_parser_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="'hermes'"):
        spec(toolCallParser="hermes2")


def test_reasoning_parser_and_chat_template_become_flags() -> None:
    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    argv, _ = launch(reasoningParser="deepseek_r1", chatTemplate=template)
    assert flag(argv, "--reasoning-parser") == "deepseek_r1"
    assert flag(argv, "--chat-template") == template


def test_embed_runs_the_pooling_runner() -> None:
    argv, _ = launch(task="embed")
    assert flag(argv, "--runner") == "pooling"
    assert "--convert" not in argv  # auto: a causal LM is pooled, an embedder kept as is


@pytest.mark.parametrize("field", ["toolCallParser", "reasoningParser"])
def test_parsers_need_a_generating_task(field: str) -> None:
    value = "hermes" if field == "toolCallParser" else "qwen3"
    with pytest.raises(ValidationError, match="need task: generate"):
        spec(task="embed", **{field: value})


@pytest.mark.parametrize(
    "args",
    [["--compilation-config", "{}"], ["-O3"], ["-O", "3"], ["--compilation-config={}"]],
)
def test_asking_for_compilation_keeps_torch_compile_on_cpu(args: list[str]) -> None:
    _, env = launch(engineArgs=args)
    assert "TORCHDYNAMO_DISABLE" not in env


def test_polled_endpoints_are_kept_out_of_the_access_log_unless_overridden() -> None:
    argv, _ = launch()
    assert flag(argv, "--disable-access-log-for-endpoints") == "/health,/metrics,/v1/models"
    argv, _ = launch(engineArgs=["--disable-access-log-for-endpoints=/ping"])
    assert argv.count("--disable-access-log-for-endpoints") == 0
    assert argv[-1] == "--disable-access-log-for-endpoints=/ping"


def test_tracing_on_gives_vllm_its_own_otlp_export() -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "PATH": "/bin"}
    built = build_launch(spec(), model_path="/m", served_name="m", host="h", port=1, otel=otel)
    assert flag(built.argv, "--otlp-traces-endpoint") == "http://collector:4318/v1/traces"
    assert built.env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"
    assert "PATH" not in built.env


def test_tracing_off_adds_nothing() -> None:
    built = build_launch(spec(), model_path="/m", served_name="m", host="h", port=1, otel={})
    assert "--otlp-traces-endpoint" not in built.argv
    assert not any(k.startswith("OTEL_") for k in built.env)


def test_an_endpoint_in_engine_args_is_kept_as_given() -> None:
    otel = {"OTEL_TRACES_EXPORTER": "otlp"}
    mine = ["--otlp-traces-endpoint=http://mine:4317"]
    built = build_launch(
        spec(engineArgs=mine), model_path="/m", served_name="m", host="h", port=1, otel=otel
    )
    assert [a for a in built.argv if a.startswith("--otlp")] == mine


def test_an_otel_exporter_hoist_cannot_build_is_an_engine_args_error() -> None:
    with pytest.raises(EngineArgsError, match="zipkin"):
        build_launch(
            spec(), model_path="/m", served_name="m", host="h", port=1,
            otel={"OTEL_TRACES_EXPORTER": "zipkin"},
        )  # fmt: skip
