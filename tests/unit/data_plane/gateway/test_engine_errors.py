"""The translation of engine error bodies to OpenAI's shape (engine_errors.py)."""

from __future__ import annotations

import orjson
import pytest

from data_plane.gateway.engine_errors import as_openai_error


def _vllm(message: str, type_: str, code: int, param: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(
            400,
            _vllm(
                "max_tokens=9 cannot be greater than max_model_len=8. Please request fewer "
                "output tokens. (parameter=max_tokens, value=9)", "BadRequestError", 400,
                "max_tokens",
            ),
            ("invalid_request_error", "context_length_exceeded", "max_tokens"),
            id="max-tokens-above-context",
        ),
        pytest.param(
            400,
            _vllm("This model's maximum context length is 8 tokens.", "BadRequestError", 400),
            ("invalid_request_error", "context_length_exceeded", None),
            id="prompt-too-long",
        ),
        pytest.param(
            400,
            _vllm("1 validation error:\n  {...}", "Bad Request", 400, "body.top_p"),
            ("invalid_request_error", "invalid_type", "top_p"),
            id="pydantic",
        ),
        pytest.param(
            400,
            _vllm("top_p must be in (0, 1], got 2.0. (parameter=top_p, value=2.0)",
                  "BadRequestError", 400, "top_p"),
            ("invalid_request_error", "invalid_value", "top_p"),
            id="value",
        ),
        pytest.param(
            400, _vllm("LoRA is not enabled.", "InvalidUserInput", 400),
            ("invalid_request_error", None, None), id="no-code-known",
        ),
        pytest.param(
            404,
            _vllm("The model `x` does not exist.", "NotFoundError", 404, "model"),
            ("invalid_request_error", "model_not_found", "model"),
            id="model",
        ),
        pytest.param(
            404, _vllm("gone", "NotFoundError", 404), ("invalid_request_error", "not_found", None),
            id="other-404",
        ),
        pytest.param(
            422, _vllm("bad entity", "UnprocessableEntityError", 422),
            ("invalid_request_error", None, None), id="422",
        ),
        pytest.param(
            429, _vllm("slow down", "TooManyRequests", 429),
            ("rate_limit_error", "rate_limit_exceeded", None), id="429",
        ),
        pytest.param(
            500, _vllm("boom", "InternalServerError", 500), ("server_error", None, None), id="500"
        ),
        pytest.param(
            501, _vllm("The model does not support Responses API", "NotImplementedError", 501),
            ("server_error", "not_implemented", None), id="501",
        ),
        pytest.param(
            503, _vllm("retry", "ServiceUnavailableError", 503), ("server_error", None, None),
            id="503",
        ),
        pytest.param(
            400,
            orjson.dumps({"object": "error", "message": "old", "type": "BadRequestError",
                          "code": 400}),
            ("invalid_request_error", None, None),
            id="old-vllm",
        ),
        pytest.param(
            404, b'{"detail": "Not Found"}', ("invalid_request_error", "unsupported_endpoint", None),
            id="route-missing",
        ),
        pytest.param(
            400,
            orjson.dumps({"error": {"message": "m", "type": "invalid_request_error",
                                    "param": None, "code": "custom"}}),
            ("invalid_request_error", "custom", None),
            id="already-openai",
        ),
        pytest.param(502, b"<html>bad</html>", ("server_error", None, None), id="html"),
    ],
)  # fmt: skip
def test_translation(
    status: int, body: bytes, expected: tuple[str, str | None, str | None]
) -> None:
    error = orjson.loads(as_openai_error(status, body, "/v1/chat/completions"))["error"]
    assert (error["type"], error["code"], error["param"]) == expected
    assert isinstance(error["message"], str)
    assert error["message"]
