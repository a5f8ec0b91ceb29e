"""Deterministic text for a simulated engine: a rough tokenizer and a seeded generator.

- `tokenize(text)` splits text into word-, number- and punctuation-sized pieces (a leading
  space belongs to the piece after it, as in byte-level BPE) and maps each piece to a stable
  id. Counts come out in the same range as a real BPE tokenizer's for English prose.
- `render_chat(messages)` flattens chat messages the way a simple chat template does.
- `plan_output(...)` picks the output tokens: words from a small vocabulary, drawn by a
  generator seeded from the engine seed, the request's own `seed` (if any), the adapter,
  the prompt and the choice index. The same request to an engine started with the same
  seed yields the same text.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import random
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_PIECE = re.compile(r" ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")

_WORDS = (
    "the of and to in is it that for on with as was at by be this from or an are not "
    "model token engine cache request batch prefix adapter queue stream latency answer "
    "server router replica block memory prompt output first next value system user "
    "quick brown fox jumps over lazy dog hello world simple small large fast slow "
    "one two three four five six seven eight nine ten many some every each"
)
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())
"""The words output text is made of (each one token, with a leading space)."""

_TOKEN_ID_BASE = 1000
_TOKEN_ID_SPACE = 1 << 31


def tokenize(text: str) -> list[int]:
    """Stable pseudo token ids for `text` (one per piece)."""
    return [
        _TOKEN_ID_BASE + zlib.crc32(piece.encode()) % _TOKEN_ID_SPACE
        for piece in _PIECE.findall(text)
    ]


_VOCABULARY_IDS: tuple[int, ...] = tuple(tokenize(" " + word)[0] for word in VOCABULARY)
_TEXT_BY_ID: dict[int, str] = {
    token_id: " " + word for token_id, word in zip(_VOCABULARY_IDS, VOCABULARY, strict=True)
}


def token_text(token_id: int) -> str:
    """The text of an output token id produced by `plan_output` (the id `tokenize` gives
    that text, so a later prompt that quotes the output hits the same cached blocks)."""
    return _TEXT_BY_ID.get(token_id, "")


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def render_chat(messages: Iterable[Mapping[str, Any]]) -> str:
    """A chat template: `<|role|>content` per message, then the assistant's turn."""
    rendered = [
        f"<|{message.get('role', 'user')}|>{_content_text(message.get('content'))}\n"
        for message in messages
    ]
    return "".join(rendered) + "<|assistant|>"


@dataclass(frozen=True)
class OutputPlan:
    """The tokens one choice will produce, and why it stops."""

    token_ids: list[int]
    finish_reason: str
    """`length` (max_tokens or the context was reached) or `stop` (a natural end)."""


def _rng(
    engine_seed: int,
    request_seed: int | None,
    adapter: str | None,
    prompt_token_ids: Sequence[int],
    index: int,
) -> random.Random:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{engine_seed}|{request_seed}|{adapter}|{index}|".encode())
    digest.update(",".join(map(str, prompt_token_ids[:256])).encode())
    digest.update(f"|{len(prompt_token_ids)}".encode())
    return random.Random(int.from_bytes(digest.digest(), "big"))  # noqa: S311 - not crypto


def plan_output(
    *,
    engine_seed: int,
    request_seed: int | None,
    adapter: str | None,
    prompt_token_ids: Sequence[int],
    index: int,
    max_tokens: int | None,
    room: int,
    ignore_eos: bool,
    natural_mean: int = 128,
) -> OutputPlan:
    """Choose the output of choice `index`.

    `room` is what the context has left (max_model_len - prompt). With `max_tokens` (or
    `ignore_eos`) the output is exactly min(max_tokens, room) tokens long and ends with
    `length`, so load generators get the lengths they ask for; without either, a seeded
    natural length (exponential around `natural_mean`, at least 1) that ends with `stop`,
    cut to `room` (and `length`) if it would not fit.
    """
    rng = _rng(engine_seed, request_seed, adapter, prompt_token_ids, index)
    limit = room if max_tokens is None else min(max_tokens, room)
    if ignore_eos or max_tokens is not None:
        length, reason = limit, "length"
    else:
        natural = 1 + int(rng.expovariate(1.0 / natural_mean))
        if natural < limit:
            length, reason = natural, "stop"
        else:
            length, reason = limit, "length"
    token_ids = rng.choices(_VOCABULARY_IDS, k=length)
    return OutputPlan(token_ids=token_ids, finish_reason=reason)
