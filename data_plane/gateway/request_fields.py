"""Read the few fields the gateway routes on from an OpenAI request body (pure).

The body is parsed once (orjson) and never re-encoded: the bytes the client sent are the
bytes the engine receives. Only `model`, `stream`, `stream_options`, `max_tokens` and the
start of the prompt are looked at; everything else passes through unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from data_plane.gateway.errors import BadRequestError


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"


@dataclass(frozen=True, slots=True)
class RequestFields:
    model: str
    stream: bool
    include_usage: bool
    prefix: str
    """The first characters of the prompt (system prompt first), for prefix affinity."""
    max_tokens: int | None = None
    """`max_completion_tokens` or `max_tokens` when an integer (it bounds the wait)."""


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
    if endpoint is Endpoint.CHAT:
        prefix = _chat_prefix(data.get("messages"), prefix_chars)
    else:
        prefix = _completion_prefix(data.get("prompt"), prefix_chars)
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        max_tokens = None
    return RequestFields(
        model=model,
        stream=stream,
        include_usage=include_usage,
        prefix=prefix,
        max_tokens=max_tokens,
    )


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
