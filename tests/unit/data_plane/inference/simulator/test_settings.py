"""The simulator's command line."""

from __future__ import annotations

import pytest

from data_plane.inference.simulator.settings import parse_args


def test_the_embedded_default_contract_parses() -> None:
    settings = parse_args(
        [
            "--host",
            "127.0.0.1",
            "--port",
            "8100",
            "--served-model-name",
            "llama",
            "--max-loras",
            "4",
            "--max-lora-rank",
            "32",
            "--max-model-len",
            "4096",
            "--seed",
            "7",
            "--profile",
            "tiny",
            "--time-scale",
            "10",
        ]
    )
    assert settings.ports() == [8100]
    assert (settings.served_model_name, settings.max_loras, settings.max_lora_rank) == (
        "llama",
        4,
        32,
    )
    assert (settings.max_model_len, settings.seed, settings.profile) == (4096, 7, "tiny")
    assert settings.time_scale == 10.0


def test_replicas_take_consecutive_ports() -> None:
    settings = parse_args(["--replicas", "3", "--base-port", "9000"])
    assert settings.ports() == [9000, 9001, 9002]


def test_vllm_model_flag_names_the_model() -> None:
    assert parse_args(["--model", "x"]).served_model_name == "x"
    assert parse_args(["--model", "x", "--served-model-name", "y"]).served_model_name == "y"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--replicas", "2"], "needs --base-port", id="replicas-without-base-port"),
        pytest.param(["--time-scale", "0"], "time_scale", id="time-scale"),
        pytest.param(["--max-loras", "0"], "max_loras", id="max-loras"),
        pytest.param(["--port", "70000"], "port", id="port"),
        pytest.param(["--profile", "nope"], "invalid choice", id="profile"),
        pytest.param(["--seed", "x"], "invalid int", id="seed"),
        pytest.param(["--bogus"], "unrecognized", id="unknown-flag"),
    ],
)
def test_bad_flags_exit_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
