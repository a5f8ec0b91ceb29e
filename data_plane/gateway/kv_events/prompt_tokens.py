"""A request's prompt as the engine tokenizes it, which the precise prefix scorer must
reproduce exactly: one token off and no block key matches.

For the simulator (`engine: sim`) that is the simulator's own tokenizer
(`data_plane.inference.simulator.text`): a chat request is rendered with its template,
`<|role|>content\\n` per message then `<|assistant|>`, and split into word-, number- and
punctuation-sized pieces, each mapped to `1000 + crc32(piece) % 2**31`; a completion's
string prompt is split the same way, and a prompt of token ids is taken as it is. The
gateway imports that module rather than copying it, so the two cannot drift.

For vLLM, the same role is played by the model's Hugging Face tokenizer and chat template
(as llm-d's KV-cache manager loads them); not wired here yet.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

from data_plane.inference.simulator.text import render_chat, tokenize


def simulator_prompt_tokens(body: bytes) -> tuple[list[int], str | None] | None:
    """The prompt token ids and `cache_salt` of a chat or completion request body; None when
    the body has no single prompt the engine would tokenize this way."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    salt = data.get("cache_salt")
    salt = salt if isinstance(salt, str) and salt else None
    messages = data.get("messages")
    if isinstance(messages, list):
        if not all(isinstance(m, dict) for m in messages):
            return None
        return tokenize(render_chat(messages)), salt
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        return tokenize(prompt), salt
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return list(prompt), salt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return tokenize(prompt[0]), salt
    return None
