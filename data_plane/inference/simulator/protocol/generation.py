"""Schema checks of the two generating bodies: `/v1/completions` and `/v1/chat/completions`.

`parse_completion` and `parse_chat` turn a decoded JSON body into a `GenerationParams` plus
the sampling fields that `sampling.check_sampling` checks once the model is known. The
Responses API (`responses_api.py`) builds its chat generation from `common_fields` and
`generation_params`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from data_plane.inference.simulator.protocol.errors import ApiError, as_mapping, schema_error
from data_plane.inference.simulator.protocol.fields import (
    bool_field,
    float_field,
    int_field,
    stop_field,
    str_field,
    stream_options,
)

Kind = Literal["completion", "chat"]


@dataclass(frozen=True)
class GenerationParams:
    """One validated generation request (a completion with several prompts has several)."""

    kind: Kind
    model: str | None
    prompts: list[str | list[int]]
    """Text prompts or token-id prompts; a chat has one, its rendered messages."""
    messages: list[Mapping[str, Any]] | None
    max_tokens: int | None
    max_tokens_param: str
    n: int
    stream: bool
    include_usage: bool
    continuous_usage_stats: bool
    ignore_eos: bool
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    cache_salt: str | None = None
    logprobs: int | None = None
    """Alternatives per output token (chat `top_logprobs`, completions `logprobs`); None:
    no log-probabilities asked for."""


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = body.get("messages")
    if value is None:
        raise schema_error("missing", "messages", "Field required", body)
    if not isinstance(value, list):
        raise schema_error("list_type", "messages", "Input should be a valid list", value)
    for index, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise schema_error(
                "model_type", f"messages.{index}", "Input should be a valid dictionary", message
            )
        if "role" not in message:
            raise schema_error("missing", f"messages.{index}.role", "Field required", message)
    return value


def _logprobs(body: Mapping[str, Any], kind: Kind) -> int | None:
    """vLLM's checks of `logprobs` / `top_logprobs`, with its messages."""
    if kind == "completion":
        value = int_field(body, "logprobs")
        if value is not None and value < 0 and value != -1:
            raise ApiError(
                f"`logprobs` must be a positive value or -1. (parameter=logprobs, value={value})",
                param="logprobs",
            )
        return value
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int | float) or isinstance(top, bool)):
        raise ApiError(
            f"`top_logprobs` must be an integer. (parameter=top_logprobs, value={top})",
            param="top_logprobs",
        )
    wanted = bool_field(body, "logprobs", False)
    if top is not None:
        if top < 0 and top != -1:
            raise ApiError(
                "`top_logprobs` must be a positive value or -1. "
                f"(parameter=top_logprobs, value={top})",
                param="top_logprobs",
            )
        if top != 0 and not wanted:
            raise ApiError(
                "when using `top_logprobs`, `logprobs` must be set to true. "
                "(parameter=top_logprobs)",
                param="top_logprobs",
            )
    top = int_field(body, "top_logprobs")
    return (top or 0) if wanted else None


def common_fields(body: Mapping[str, Any], kind: Kind) -> dict[str, Any]:
    """The fields every generating body shares, read and schema-checked."""
    model = str_field(body, "model")
    stream = bool_field(body, "stream", False)
    include_usage, continuous = stream_options(body, stream)
    max_tokens_param = "max_tokens"
    max_tokens = int_field(body, "max_tokens")
    if kind == "chat" and body.get("max_completion_tokens") is not None:
        max_tokens_param = "max_completion_tokens"
        max_tokens = int_field(body, "max_completion_tokens")
    n = int_field(body, "n")
    temperature = float_field(body, "temperature")
    top_p = float_field(body, "top_p")
    seed = int_field(body, "seed")
    stop = stop_field(body)
    ignore_eos = bool_field(body, "ignore_eos", False)
    cache_salt = str_field(body, "cache_salt")
    logprobs = _logprobs(body, kind)
    return {
        "logprobs": logprobs,
        "model": model or None,
        "stream": stream,
        "include_usage": include_usage,
        "continuous_usage_stats": continuous,
        "max_tokens": max_tokens,
        "max_tokens_param": max_tokens_param,
        "n": 1 if n is None else n,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "stop": stop,
        "ignore_eos": ignore_eos,
        "cache_salt": cache_salt,
    }


_PARAM_FIELDS = (
    "model", "max_tokens", "max_tokens_param", "n", "stream", "include_usage",
    "continuous_usage_stats", "ignore_eos", "stop", "seed", "cache_salt", "logprobs",
)  # fmt: skip


def generation_params(kind: Kind, fields: dict[str, Any], messages: Any) -> GenerationParams:
    """The generation parameters both endpoints share, from their checked common fields."""
    shared: dict[str, Any] = {name: fields[name] for name in _PARAM_FIELDS}
    return GenerationParams(kind=kind, prompts=[], messages=messages, **shared)


def parse_completion(body: Any) -> tuple[GenerationParams, dict[str, Any]]:
    """Schema-check a /v1/completions body. Returns the params and the sampling fields
    (checked later by `check_sampling`, after the model is known)."""
    body = as_mapping(body)
    fields = common_fields(body, "completion")
    raw_prompt = body.get("prompt")
    if raw_prompt is not None and not isinstance(raw_prompt, str | list):
        raise schema_error("string_type", "prompt", "Input should be a valid string", raw_prompt)
    params = generation_params("completion", fields, messages=None)
    return params, fields


def parse_chat(body: Any) -> tuple[GenerationParams, dict[str, Any]]:
    """Schema-check a /v1/chat/completions body (see `parse_completion`)."""
    body = as_mapping(body)
    messages = _messages(body)
    fields = common_fields(body, "chat")
    params = generation_params("chat", fields, messages=messages)
    return params, fields
