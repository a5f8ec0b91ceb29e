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

from collections import OrderedDict
from typing import Any

import orjson

from data_plane.inference.simulator.text import render_chat, tokenize

_ASSISTANT_TURN = render_chat([])
"""What the template appends after the messages (`<|assistant|>`)."""


class SimulatorPromptTokens:
    """A request body -> (prompt token ids, cache_salt) as the simulator tokenizes it.

    Tokenizing a long system prompt costs about a millisecond, so each rendered message's
    tokens are kept (`cache_size` messages, least recently used first out). Per message is
    exact: every rendered message ends in a newline and the next begins with `<|`, so no
    token of the tokenizer spans two messages, and the whole prompt's tokens are the
    messages' tokens in order, then the assistant turn's.
    """

    def __init__(self, cache_size: int = 1024) -> None:
        self._cache: OrderedDict[str, list[int]] = OrderedDict()
        self._cache_size = cache_size
        self._assistant = tokenize(_ASSISTANT_TURN)

    def __call__(self, body: bytes) -> tuple[list[int], str | None] | None:
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
            tokens: list[int] = []
            for message in messages:
                tokens += self._message_tokens(render_chat([message])[: -len(_ASSISTANT_TURN)])
            return tokens + self._assistant, salt
        prompt = data.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if isinstance(prompt, str):
            return tokenize(prompt), salt
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            return list(prompt), salt
        return None

    def _message_tokens(self, rendered: str) -> list[int]:
        cache = self._cache
        tokens = cache.get(rendered)
        if tokens is None:
            tokens = cache[rendered] = tokenize(rendered)
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(rendered)
        return tokens
