"""Stream chunks as vLLM 0.32 frames them (each becomes one SSE `data:` event). Pure: no I/O."""

from __future__ import annotations

from typing import Any

from data_plane.inference.simulator.protocol.answers import usage
from data_plane.inference.simulator.protocol.generation import Kind


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
