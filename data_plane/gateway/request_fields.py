"""Read the few fields the gateway routes on from an OpenAI request body (pure).

The body is parsed once (orjson) and never re-encoded: the bytes the client sent are the
bytes the engine receives. Only `model`, `stream`, `stream_options`, the start of the
prompt and what bounds the work asked for (`n`, the prompt count, `max_tokens`) are looked
at; everything else passes through unread. `/v1/responses` and `/v1/embeddings` read
`input` instead of `messages`/`prompt` (openai_inputs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from data_plane.gateway.errors import BadRequestError
from data_plane.gateway.openai_inputs import (
    embeddings_prefix,
    responses_max_tokens,
    responses_prefix,
)

MAX_N = 128
"""OpenAI's own limit on `n` (choices per prompt)."""


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True, slots=True)
class RequestFields:
    model: str
    stream: bool
    include_usage: bool
    prefix: str
    """The first characters of the prompt (system prompt first), for prefix affinity."""
    choices: int = 1
    """Sequences the engine generates: `n` times the prompts of a batch completion."""
    max_tokens: int | None = None
    """`max_completion_tokens` or `max_tokens` when a non-negative integer (it bounds the
    work asked for and the wait for an answer)."""

    def requested_tokens(self, assumed_max_tokens: int) -> int:
        """The completion tokens the request may make the engine generate at most."""
        per_choice = self.max_tokens if self.max_tokens is not None else assumed_max_tokens
        return self.choices * max(per_choice, 1)


def parse_request(body: bytes, endpoint: Endpoint, prefix_chars: int) -> RequestFields:
    """The routing fields of `body`, or BadRequestError with a message a client can act on."""
    if not body:
        raise BadRequestError("The request body is empty; send a JSON object.")
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.")
    model = data.get("model")
    if model is None:
        raise BadRequestError("You must provide a model parameter.", param="model")
    if not isinstance(model, str) or not model:
        raise BadRequestError("`model` must be a non-empty string.", param="model")
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequestError("`stream` must be a boolean.", param="stream")
    options = data.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise BadRequestError("`stream_options` must be an object.", param="stream_options")
        include_usage = options.get("include_usage") is True
    prefix, prompts, max_tokens = _prompt_fields(data, endpoint, prefix_chars)
    if endpoint is Endpoint.RESPONSES:
        include_usage = True  # `response.completed` always carries the usage
    return RequestFields(
        model=model,
        stream=stream,
        include_usage=include_usage,
        prefix=prefix,
        choices=_n(data.get("n")) * prompts,
        max_tokens=max_tokens,
    )


def _prompt_fields(
    data: dict[str, Any], endpoint: Endpoint, limit: int
) -> tuple[str, int, int | None]:
    """The prompt's start, how many prompts, and the output bound per choice."""
    if endpoint is Endpoint.CHAT:
        return _chat_prefix(data.get("messages"), limit), 1, _max_tokens(data)
    if endpoint is Endpoint.RESPONSES:
        return responses_prefix(data, limit), 1, responses_max_tokens(data)
    if endpoint is Endpoint.EMBEDDINGS:  # nothing is generated: no token bound applies
        return embeddings_prefix(data, limit), 1, 0
    prompt = data.get("prompt")
    prefix = _completion_prefix(prompt, limit)
    prompts = 1
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str | list):
        prompts = len(prompt)
    return prefix, prompts, _max_tokens(data)


def _n(value: Any) -> int:
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequestError("`n` must be an integer.", param="n", code="invalid_type")
    if value < 1:
        raise BadRequestError(
            f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {value}"
            " instead.",
            param="n",
            code="integer_below_min_value",
        )
    if value > MAX_N:
        raise BadRequestError(
            f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but got"
            f" {value} instead.",
            param="n",
            code="integer_above_max_value",
        )
    return value


def _max_tokens(data: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _chat_prefix(messages: Any, limit: int) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("`messages` must be a non-empty array.", param="messages")
    parts: list[str] = []
    size = 0
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequestError("Each message must be an object.", param="messages")
        content = message.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        else:
            text = ""
        role = message.get("role")
        parts.append(role if isinstance(role, str) else "")
        parts.append(":")
        parts.append(text)
        parts.append("\n")
        size += len(text) + 8
        if size >= limit:
            break
    return "".join(parts)[:limit]


def _completion_prefix(prompt: Any, limit: int) -> str:
    if isinstance(prompt, str):
        return prompt[:limit]
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        if isinstance(first, str):
            return first[:limit]
        if isinstance(first, int):  # token ids
            return ",".join(str(t) for t in prompt[: max(1, limit // 4)])
        if isinstance(first, list):
            return ",".join(str(t) for t in first[: max(1, limit // 4)])
    if prompt is None:
        raise BadRequestError("You must provide a prompt.", param="prompt")
    if isinstance(prompt, list):
        raise BadRequestError("`prompt` must not be empty.", param="prompt")
    raise BadRequestError("`prompt` must be a string or an array.", param="prompt")


def check_token_bound(fields: RequestFields, cap: int, assumed_max_tokens: int) -> None:
    """Refuse a request that may make the engine generate more than `cap` tokens."""
    asked = fields.requested_tokens(assumed_max_tokens)
    if asked <= cap:
        return
    param = "max_tokens" if fields.choices == 1 else "n"
    unset = "" if fields.max_tokens is not None else f" (no max_tokens counts {assumed_max_tokens})"
    raise BadRequestError(
        f"This request may generate {asked} tokens: n x prompts x max_tokens{unset} is over"
        f" the limit of {cap} per request. Lower n or max_tokens.",
        param=param,
        code="request_tokens_above_limit",
    )
