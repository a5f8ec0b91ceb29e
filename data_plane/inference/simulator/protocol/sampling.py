"""The checks that follow the model check: sampling parameters, prompts and their length.

vLLM checks these after it knows the model (a bad `n` for an unknown model is a 404), with
the messages of its SamplingParams and renderer. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from data_plane.inference.simulator.protocol.errors import ApiError, as_mapping, schema_error
from data_plane.inference.simulator.protocol.fields import is_token_list
from data_plane.inference.simulator.protocol.generation import GenerationParams

MAX_LOGPROBS = 20
"""vLLM's default `--max-logprobs`."""


def check_sampling(
    params: GenerationParams, fields: Mapping[str, Any], body: Any, max_model_len: int
) -> GenerationParams:
    """The semantic checks that follow the model check; returns params with the prompts."""
    _check_sampling(fields, max_model_len)
    if params.kind == "completion":
        return replace(params, prompts=_prompts(as_mapping(body)))
    return params


def check_prompt_length(num_tokens: int, max_model_len: int) -> None:
    """vLLM's answer to a prompt longer than the context."""
    if num_tokens > max_model_len:
        qualifier = "at least " if num_tokens == max_model_len + 1 else ""
        raise ApiError(
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"prompt contains {qualifier}{num_tokens} input tokens, which exceeds this limit "
            "even without any output tokens. Please reduce the length of the input prompt. "
            f"(parameter=input_tokens, value={num_tokens})",
            param="input_tokens",
        )
    if num_tokens == max_model_len:
        raise ApiError(
            "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)",
            param="max_tokens",
        )


def _prompts(body: Mapping[str, Any]) -> list[str | list[int]]:
    value = body.get("prompt")
    missing = ApiError(
        "Either prompt or prompt_embeds must be provided and non-empty. (parameter=prompt)",
        param="prompt",
    )
    if value is None:
        raise missing
    if isinstance(value, str):
        if not value:
            raise missing
        return [value]
    if is_token_list(value):
        if not value:
            raise missing
        return [list(value)]
    if isinstance(value, list) and value:
        prompts: list[str | list[int]] = []
        for item in value:
            if isinstance(item, str):
                prompts.append(item)
            elif is_token_list(item) and item:
                prompts.append(list(item))
            else:
                raise schema_error("string_type", "prompt", "Input should be a valid string", value)
        if any(isinstance(p, str) and not p for p in prompts):
            raise missing
        return prompts
    if isinstance(value, list):
        raise missing
    raise schema_error("string_type", "prompt", "Input should be a valid string", value)


def _check_sampling(fields: Mapping[str, Any], max_model_len: int) -> None:
    """The checks of vLLM's SamplingParams and renderer, with their messages."""
    n = fields["n"]
    if n < 1:
        raise ApiError(f"n must be at least 1, got {n}.")
    temperature = fields["temperature"]
    if temperature is not None:
        if not math.isfinite(temperature):
            raise ApiError(
                f"temperature must be a finite number, got {temperature}. "
                f"(parameter=temperature, value={temperature})",
                param="temperature",
            )
        if temperature < 0.0:
            raise ApiError(
                f"temperature must be non-negative, got {temperature}. "
                f"(parameter=temperature, value={temperature})",
                param="temperature",
            )
        if temperature > 2.0:
            raise ApiError(
                f"temperature must be in [0, 2], got {temperature}. "
                f"(parameter=temperature, value={temperature})",
                param="temperature",
            )
    top_p = fields["top_p"]
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ApiError(
            f"top_p must be in (0, 1], got {top_p}. (parameter=top_p, value={top_p})",
            param="top_p",
        )
    logprobs = fields.get("logprobs")
    if logprobs is not None and (logprobs == -1 or logprobs > MAX_LOGPROBS):
        asked = "the vocabulary" if logprobs == -1 else logprobs
        raise ApiError(
            f"Requested sample logprobs of {asked}, which is greater than max allowed: "
            f"{MAX_LOGPROBS} (parameter=logprobs, value={logprobs})",
            param="logprobs",
        )
    max_tokens = fields["max_tokens"]
    param = fields["max_tokens_param"]
    if max_tokens is not None:
        if max_tokens > max_model_len:
            raise ApiError(
                f"{param}={max_tokens} cannot be greater than max_model_len={max_model_len}. "
                f"Please request fewer output tokens. (parameter={param}, value={max_tokens})",
                param=param,
            )
        if max_tokens < 1:
            raise ApiError(
                f"max_tokens must be at least 1, got {max_tokens}. "
                f"(parameter=max_tokens, value={max_tokens})",
                param="max_tokens",
            )
