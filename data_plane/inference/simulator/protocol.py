"""vLLM's OpenAI-compatible request validation and response shapes, without a web framework.

`parse_completion` and `parse_chat` turn a decoded JSON body into a `GenerationParams` or
raise `ApiError` with the status, `type`, `param` and message vLLM 0.32 answers with (schema
errors are pydantic-style "Bad Request"s, sampling errors "BadRequestError"s, unknown models
404 "NotFoundError"s). The `*_body` / `*_chunk` functions build the JSON objects vLLM sends,
field for field. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

VLLM_VERSION = "0.32.0"
MAX_LOGPROBS = 20
"""vLLM's default `--max-logprobs`."""

Kind = Literal["completion", "chat"]


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


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"'<dict of {len(value)} items>'"
    return repr(value)


def schema_error(kind: str, loc: str, msg: str, value: Any) -> ApiError:
    """The request body does not match the schema (what FastAPI + pydantic answer in vLLM)."""
    detail = (
        f"{{'type': '{kind}', 'loc': 'body.{loc}', 'msg': '{msg}', 'input': {_describe(value)}}}"
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


# -- field readers ---------------------------------------------------------------------


def _int_field(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise schema_error(
                "int_parsing",
                name,
                "Input should be a valid integer, unable to parse string as an integer",
                value,
            ) from None
    if isinstance(value, float):
        raise schema_error(
            "int_from_float",
            name,
            "Input should be a valid integer, got a number with a fractional part",
            value,
        )
    raise schema_error("int_type", name, "Input should be a valid integer", value)


def _float_field(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise schema_error(
                "float_parsing",
                name,
                "Input should be a valid number, unable to parse string as a number",
                value,
            ) from None
    raise schema_error("float_type", name, "Input should be a valid number", value)


def _bool_field(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise schema_error("bool_parsing", name, "Input should be a valid boolean", value)


def _str_field(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise schema_error("string_type", name, "Input should be a valid string", value)


def _stop_field(body: Mapping[str, Any]) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise schema_error("list_type", "stop", "Input should be a valid list", value)


def _stream_options(body: Mapping[str, Any], stream: bool) -> tuple[bool, bool]:
    options = body.get("stream_options")
    if options is None:
        return False, False
    if not isinstance(options, Mapping):
        raise schema_error(
            "model_type", "stream_options", "Input should be a valid dictionary", options
        )
    if not stream:
        raise ApiError(
            "Stream options can only be defined when `stream=True`.", param="stream_options"
        )
    return (
        _bool_field(options, "include_usage", False),
        _bool_field(options, "continuous_usage_stats", False),
    )


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
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
    if _is_token_list(value):
        if not value:
            raise missing
        return [list(value)]
    if isinstance(value, list) and value:
        prompts: list[str | list[int]] = []
        for item in value:
            if isinstance(item, str):
                prompts.append(item)
            elif _is_token_list(item) and item:
                prompts.append(list(item))
            else:
                raise schema_error("string_type", "prompt", "Input should be a valid string", value)
        if any(isinstance(p, str) and not p for p in prompts):
            raise missing
        return prompts
    if isinstance(value, list):
        raise missing
    raise schema_error("string_type", "prompt", "Input should be a valid string", value)


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
        value = _int_field(body, "logprobs")
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
    wanted = _bool_field(body, "logprobs", False)
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
    top = _int_field(body, "top_logprobs")
    return (top or 0) if wanted else None


def _common(body: Mapping[str, Any], kind: Kind) -> dict[str, Any]:
    model = _str_field(body, "model")
    stream = _bool_field(body, "stream", False)
    include_usage, continuous = _stream_options(body, stream)
    max_tokens_param = "max_tokens"
    max_tokens = _int_field(body, "max_tokens")
    if kind == "chat" and body.get("max_completion_tokens") is not None:
        max_tokens_param = "max_completion_tokens"
        max_tokens = _int_field(body, "max_completion_tokens")
    n = _int_field(body, "n")
    temperature = _float_field(body, "temperature")
    top_p = _float_field(body, "top_p")
    seed = _int_field(body, "seed")
    stop = _stop_field(body)
    ignore_eos = _bool_field(body, "ignore_eos", False)
    cache_salt = _str_field(body, "cache_salt")
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


def _as_mapping(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ApiError(
            "1 validation error:\n  {'type': 'model_attributes_type', 'loc': 'body', "
            "'msg': 'Input should be a valid dictionary or object to extract fields from', "
            f"'input': {_describe(body)}}}",
            err_type="Bad Request",
            param="body",
        )
    return body


_PARAM_FIELDS = (
    "model", "max_tokens", "max_tokens_param", "n", "stream", "include_usage",
    "continuous_usage_stats", "ignore_eos", "stop", "seed", "cache_salt", "logprobs",
)  # fmt: skip


def _params(kind: Kind, fields: dict[str, Any], messages: Any) -> GenerationParams:
    """The generation parameters both endpoints share, from their checked common fields."""
    shared: dict[str, Any] = {name: fields[name] for name in _PARAM_FIELDS}
    return GenerationParams(kind=kind, prompts=[], messages=messages, **shared)


def parse_completion(body: Any) -> tuple[GenerationParams, dict[str, Any]]:
    """Schema-check a /v1/completions body. Returns the params and the sampling fields
    (checked later by `check_sampling`, after the model is known)."""
    body = _as_mapping(body)
    fields = _common(body, "completion")
    raw_prompt = body.get("prompt")
    if raw_prompt is not None and not isinstance(raw_prompt, str | list):
        raise schema_error("string_type", "prompt", "Input should be a valid string", raw_prompt)
    params = _params("completion", fields, messages=None)
    return params, fields


def parse_chat(body: Any) -> tuple[GenerationParams, dict[str, Any]]:
    """Schema-check a /v1/chat/completions body (see `parse_completion`)."""
    body = _as_mapping(body)
    messages = _messages(body)
    fields = _common(body, "chat")
    params = _params("chat", fields, messages=messages)
    return params, fields


def check_sampling(
    params: GenerationParams, fields: Mapping[str, Any], body: Any, max_model_len: int
) -> GenerationParams:
    """The semantic checks that follow the model check; returns params with the prompts."""
    _check_sampling(fields, max_model_len)
    if params.kind == "completion":
        return replace(params, prompts=_prompts(_as_mapping(body)))
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


# -- responses -------------------------------------------------------------------------


def system_fingerprint(served_model_name: str) -> str:
    import zlib

    return f"vllm-{VLLM_VERSION}-{zlib.crc32(served_model_name.encode()):08x}"


def usage(prompt_tokens: int, completion_tokens: int, *, details: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }
    if details:
        body["prompt_tokens_details"] = None
        body["completion_tokens_details"] = None
    return body


@dataclass
class ChoiceResult:
    """One finished choice of a non-streamed answer."""

    index: int
    text: str
    finish_reason: str
    stop_reason: str | None
    logprobs: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    """A chat message's `tool_calls` (tool_calls.py); None: a text answer, no such key."""


def completion_body(
    *,
    request_id: str,
    created: int,
    model: str,
    fingerprint: str,
    choices: Sequence[ChoiceResult],
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": choice.index,
                "text": choice.text,
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
                "stop_reason": choice.stop_reason,
                "token_ids": None,
                "prompt_logprobs": None,
                "prompt_token_ids": None,
                "routed_experts": None,
            }
            for choice in choices
        ],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": usage(prompt_tokens, completion_tokens, details=True),
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def _message(choice: ChoiceResult) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
    }
    if choice.tool_calls is not None:  # vLLM leaves the key out when there are none
        message["tool_calls"] = choice.tool_calls
    message["reasoning"] = None
    return message


def chat_body(
    *,
    request_id: str,
    created: int,
    model: str,
    fingerprint: str,
    choices: Sequence[ChoiceResult],
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": choice.index,
                "message": _message(choice),
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
                "stop_reason": choice.stop_reason,
                "token_ids": None,
                "routed_experts": None,
            }
            for choice in choices
        ],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": usage(prompt_tokens, completion_tokens, details=True),
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def completion_chunk(
    *,
    request_id: str,
    created: int,
    model: str,
    index: int,
    text: str,
    finish_reason: str | None = None,
    stop_reason: str | None = None,
    fingerprint: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": index,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
        "prompt_token_ids": None,
        "token_ids": None,
    }
    return _stream_chunk(
        "text_completion",
        request_id=request_id,
        created=created,
        model=model,
        choice=choice,
        fingerprint=fingerprint,
    )


def _stream_chunk(
    obj: str,
    *,
    request_id: str,
    created: int,
    model: str,
    choice: dict[str, Any],
    fingerprint: str | None,
) -> dict[str, Any]:
    """One SSE chunk as vLLM frames it; the fingerprint only where vLLM puts one."""
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
    }
    if fingerprint is not None:
        chunk["system_fingerprint"] = fingerprint
    return chunk


def chat_chunk(
    *,
    request_id: str,
    created: int,
    model: str,
    index: int,
    text: str,
    first: bool = False,
    finish_reason: str | None = None,
    stop_reason: str | None = None,
    fingerprint: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if first:
        choice: dict[str, Any] = {
            "index": index,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        return {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
            "prompt_token_ids": None,
            "prompt_text": None,
        }
    choice = {
        "index": index,
        "delta": {"content": text},
        "logprobs": logprobs,
        "finish_reason": finish_reason,
    }
    if finish_reason is not None:
        choice["stop_reason"] = stop_reason
    choice["token_ids"] = None
    return _stream_chunk(
        "chat.completion.chunk",
        request_id=request_id,
        created=created,
        model=model,
        choice=choice,
        fingerprint=fingerprint,
    )


def usage_chunk(
    *,
    kind: Kind,
    request_id: str,
    created: int,
    model: str,
    fingerprint: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "text_completion" if kind == "completion" else "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(prompt_tokens, completion_tokens, details=False),
        "system_fingerprint": fingerprint,
    }


def model_card(
    *, model_id: str, created: int, root: str, parent: str | None, max_model_len: int | None
) -> dict[str, Any]:
    import hashlib

    perm_id = hashlib.blake2b(f"{model_id}|{created}".encode(), digest_size=8).hexdigest()
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": max_model_len,
        "permission": [
            {
                "id": f"modelperm-{perm_id}",
                "object": "model_permission",
                "created": created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }
