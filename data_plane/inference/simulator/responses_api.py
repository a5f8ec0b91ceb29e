"""vLLM's `/v1/responses` (the simple, non-Harmony path): request checks, the response
object and the streamed events, field for field as vLLM 0.32 sends them. Pure: no I/O.

A Responses request becomes a chat generation: `instructions` is the system message and
`input` (a string, or message items with string or `input_text` content) the rest. The
stream is `response.created`, `response.in_progress`, then for the one message
`response.output_item.added`, `response.content_part.added`, one
`response.output_text.delta` per token, `response.output_text.done`,
`response.content_part.done`, `response.output_item.done`, and `response.completed`
(the whole response, with its usage). Each SSE event names its type (`event: ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from data_plane.inference.simulator.protocol.errors import ApiError, as_mapping, schema_error
from data_plane.inference.simulator.protocol.generation import (
    GenerationParams,
    common_fields,
    generation_params,
)


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = body.get("input")
    messages: list[Mapping[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise schema_error(
                "string_type", "instructions", "Input should be a valid string", instructions
            )
        messages.append({"role": "system", "content": instructions})
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return messages
    if not isinstance(value, list):
        raise schema_error("string_type", "input", "Input should be a valid string", value)
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise schema_error(
                "model_type", f"input.{index}", "Input should be a valid dictionary", item
            )
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(
                part["text"]
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
        role = item.get("role", "user")
        messages.append({"role": role, "content": content if isinstance(content, str) else ""})
    return messages


def parse_responses(body: Any) -> tuple[GenerationParams, dict[str, Any]]:
    """Schema-check a /v1/responses body: the chat generation it asks for, and the sampling
    fields for `check_sampling`."""
    body = as_mapping(body)
    if "input" not in body:
        raise schema_error("missing", "input", "Field required", body)
    if body.get("previous_response_id") is not None:  # the store is off, as in Hoist's vLLM
        raise ApiError(
            f"Response with id '{body['previous_response_id']}' not found.",
            status=404,
            err_type="invalid_request_error",
            param="previous_response_id",
        )
    messages = _messages(body)
    shared = ("model", "stream", "temperature", "top_p", "seed", "stop", "ignore_eos")
    chat_view = {k: v for k, v in body.items() if k in shared}
    fields = common_fields(chat_view, "chat")
    fields["max_tokens"] = _output_tokens(body)
    fields["max_tokens_param"] = "max_output_tokens"
    params = generation_params("chat", fields, messages=messages)
    return params, fields


def _output_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_output_tokens")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise schema_error("int_type", "max_output_tokens", "Input should be a valid integer", value)


def response_object(
    body: Mapping[str, Any],
    *,
    response_id: str,
    created: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """vLLM's ResponsesResponse for the request `body` (the request's own settings echoed)."""
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    tools = body.get("tools") or []
    return {
        "id": response_id,
        "created_at": created,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata"),
        "model": model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": 1.0 if temperature is None else float(temperature),
        "tool_choice": body.get("tool_choice", "auto" if tools else "none"),
        "tools": tools,
        "top_p": 1.0 if top_p is None else float(top_p),
        "background": bool(body.get("background", False)),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "previous_response_id": None,
        "prompt": body.get("prompt"),
        "reasoning": body.get("reasoning"),
        "service_tier": body.get("service_tier", "auto"),
        "status": status,
        "text": body.get("text"),
        "top_logprobs": body.get("top_logprobs"),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "presence_penalty": float(body.get("presence_penalty") or 0.0),
        "frequency_penalty": float(body.get("frequency_penalty") or 0.0),
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "input_messages": None,
        "output_messages": None,
    }


def response_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": 0,
            "cache_write_tokens": 0,
            "input_tokens_per_turn": [],
            "cached_tokens_per_turn": [],
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {
            "reasoning_tokens": 0,
            "tool_output_tokens": 0,
            "output_tokens_per_turn": [],
            "tool_output_tokens_per_turn": [],
        },
        "total_tokens": input_tokens + output_tokens,
    }


def _text_part(text: str, logprobs: list[Any] | None) -> dict[str, Any]:
    return {"annotations": [], "text": text, "type": "output_text", "logprobs": logprobs}


def output_message(item_id: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    """The assistant message item (no content part when nothing was generated, as vLLM)."""
    content = [_text_part(text, None)] if text or status != "completed" else []
    return {
        "id": item_id,
        "content": content,
        "role": "assistant",
        "status": status,
        "type": "message",
        "phase": None,
    }


def event(kind: str, sequence: int, **fields: Any) -> bytes:
    """One SSE event of the stream, as vLLM frames it: `event: kind` then its JSON."""
    data = {**fields, "sequence_number": sequence, "type": kind}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def opening_events(item_id: str, first_sequence: int) -> bytes:
    """The message item and its text part, before the first delta."""
    item = output_message(item_id, "", status="in_progress")
    item["content"] = []
    return event("response.output_item.added", first_sequence, item=item, output_index=0) + event(
        "response.content_part.added",
        first_sequence + 1,
        content_index=0,
        item_id=item_id,
        output_index=0,
        part=_text_part("", []),
    )


def delta_event(item_id: str, sequence: int, text: str) -> bytes:
    return event(
        "response.output_text.delta",
        sequence,
        content_index=0,
        delta=text,
        item_id=item_id,
        logprobs=[],
        output_index=0,
    )


def closing_events(item_id: str, first_sequence: int, text: str) -> bytes:
    """The text, its part and its item done (after the last delta)."""
    common = {"content_index": 0, "item_id": item_id, "output_index": 0}
    return (
        event("response.output_text.done", first_sequence, **common, logprobs=[], text=text)
        + event(
            "response.content_part.done", first_sequence + 1, **common, part=_text_part(text, None)
        )
        + event(
            "response.output_item.done",
            first_sequence + 2,
            item={**output_message(item_id, text), "content": [_text_part(text, None)]},
            output_index=0,
        )
    )
