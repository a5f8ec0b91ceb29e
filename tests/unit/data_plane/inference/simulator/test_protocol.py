"""Request checks answer like vLLM: status, error type and param."""

from __future__ import annotations

from typing import Any

import pytest

from data_plane.inference.simulator.protocol.errors import ApiError
from data_plane.inference.simulator.protocol.generation import parse_chat, parse_completion
from data_plane.inference.simulator.protocol.sampling import check_prompt_length, check_sampling

MAX_LEN = 512


def _completion(body: Any) -> None:
    params, fields = parse_completion(body)
    check_sampling(params, fields, body, MAX_LEN)


def _chat(body: Any) -> None:
    params, fields = parse_chat(body)
    check_sampling(params, fields, body, MAX_LEN)


@pytest.mark.parametrize(
    ("body", "err_type", "param", "message"),
    [
        pytest.param({"model": "m"}, "BadRequestError", "prompt", "Either prompt", id="no-prompt"),
        pytest.param({"prompt": ""}, "BadRequestError", "prompt", "Either prompt", id="empty"),
        pytest.param({"prompt": []}, "BadRequestError", "prompt", "Either prompt", id="empty-list"),
        pytest.param(
            {"prompt": "x", "max_tokens": 0},
            "BadRequestError",
            "max_tokens",
            "max_tokens must be at least 1, got 0.",
            id="zero-max-tokens",
        ),
        pytest.param(
            {"prompt": "x", "max_tokens": 100000},
            "BadRequestError",
            "max_tokens",
            "max_tokens=100000 cannot be greater than max_model_len=512",
            id="max-tokens-over-context",
        ),
        pytest.param(
            {"prompt": "x", "max_tokens": "abc"},
            "Bad Request",
            "body.max_tokens",
            "int_parsing",
            id="max-tokens-not-int",
        ),
        pytest.param(
            {"prompt": "x", "n": 0}, "BadRequestError", None, "n must be at least 1", id="n0"
        ),
        pytest.param(
            {"prompt": "x", "temperature": -1},
            "BadRequestError",
            "temperature",
            "temperature must be non-negative, got -1.0.",
            id="temperature",
        ),
        pytest.param(
            {"prompt": "x", "top_p": 0},
            "BadRequestError",
            "top_p",
            "top_p must be in (0, 1]",
            id="top-p",
        ),
        pytest.param(
            {"prompt": "x", "stream_options": {"include_usage": True}},
            "BadRequestError",
            "stream_options",
            "Stream options can only be defined when `stream=True`.",
            id="stream-options-without-stream",
        ),
        pytest.param({"prompt": 5}, "Bad Request", "body.prompt", "string_type", id="prompt-int"),
        pytest.param([1, 2], "Bad Request", "body", "valid dictionary", id="not-an-object"),
        pytest.param({"prompt": "x", "stop": 3}, "Bad Request", "body.stop", "list", id="stop"),
    ],
)
def test_completion_errors(body: Any, err_type: str, param: str | None, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        _completion(body)
    error = caught.value
    assert error.status == 400
    assert error.err_type == err_type
    assert error.param == param
    assert message in error.message
    assert error.body()["error"]["code"] == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"model": "m"}, "body.messages", id="no-messages"),
        pytest.param({"messages": "hi"}, "body.messages", id="messages-not-list"),
        pytest.param({"messages": ["hi"]}, "body.messages.0", id="message-not-object"),
        pytest.param({"messages": [{"content": "x"}]}, "body.messages.0.role", id="no-role"),
    ],
)
def test_chat_schema_errors(body: Any, param: str) -> None:
    with pytest.raises(ApiError) as caught:
        _chat(body)
    assert caught.value.err_type == "Bad Request"
    assert caught.value.param == param


def test_chat_max_completion_tokens_wins_and_is_named_in_errors() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 3}
    params, _ = parse_chat({**body, "max_completion_tokens": 5})
    assert params.max_tokens == 5
    with pytest.raises(ApiError) as caught:
        _chat({**body, "max_completion_tokens": 1000})
    assert caught.value.param == "max_completion_tokens"


def test_valid_requests_parse() -> None:
    body = {
        "model": "m",
        "prompt": ["a", [1, 2]],
        "max_tokens": 4,
        "n": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
        "stop": "x",
        "seed": 3,
        "ignore_eos": True,
        "extra_field": {"kept": "ignored"},
    }
    params, fields = parse_completion(body)
    params = check_sampling(params, fields, body, MAX_LEN)
    assert params.prompts == ["a", [1, 2]]
    assert (params.n, params.max_tokens, params.stream, params.include_usage) == (2, 4, True, True)
    assert params.stop == ["x"]
    assert params.seed == 3
    assert params.ignore_eos


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        pytest.param(513, "contains at least 513 input tokens", id="one-over"),
        pytest.param(600, "contains 600 input tokens", id="far-over"),
        pytest.param(512, "max_tokens must be at least 1, got 0.", id="no-room"),
    ],
)
def test_prompt_length(tokens: int, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_prompt_length(tokens, MAX_LEN)
    assert message in caught.value.message
    check_prompt_length(511, MAX_LEN)
