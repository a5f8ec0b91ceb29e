"""Errors in OpenAI's shape, with the messages vLLM 0.32 answers with. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error answer in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        err_type: str = "BadRequestError",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.err_type = err_type
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.err_type,
                "param": self.param,
                "code": self.status,
            }
        }


def describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"'<dict of {len(value)} items>'"
    return repr(value)


def schema_error(kind: str, loc: str, msg: str, value: Any) -> ApiError:
    """The request body does not match the schema (what FastAPI + pydantic answer in vLLM)."""
    detail = (
        f"{{'type': '{kind}', 'loc': 'body.{loc}', 'msg': '{msg}', 'input': {describe(value)}}}"
    )
    return ApiError(f"1 validation error:\n  {detail}", err_type="Bad Request", param=f"body.{loc}")


def json_error(reason: str) -> ApiError:
    """The body is not JSON."""
    detail = (
        "{'type': 'json_invalid', 'loc': 'body.1', 'msg': 'JSON decode error', "
        f"'input': '<dict of 0 items>', 'ctx': {{'error': {reason!r}}}}}"
    )
    return ApiError(f"1 validation error:\n  {detail}", err_type="Bad Request", param="body.1")


def model_not_found(model: str, base_model: str) -> ApiError:
    return ApiError(
        f"The model `{model}` does not exist. Valid aliases: {base_model}.",
        status=404,
        err_type="NotFoundError",
        param="model",
    )


def as_mapping(body: Any) -> Mapping[str, Any]:
    """The body as a JSON object, or the schema error vLLM answers when it is not one."""
    if not isinstance(body, Mapping):
        raise ApiError(
            "1 validation error:\n  {'type': 'model_attributes_type', 'loc': 'body', "
            "'msg': 'Input should be a valid dictionary or object to extract fields from', "
            f"'input': {describe(body)}}}",
            err_type="Bad Request",
            param="body",
        )
    return body
