"""Log-probabilities for simulated output, in the shapes vLLM answers them. Pure: no I/O.

Each output token gets a deterministic log-probability (a function of its id and position)
and, when asked, `k` alternatives: the sampled token first (a simulated engine samples the
most likely token), then other words of the vocabulary, each less likely than the one
before. Chat answers `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`
with `top_logprobs` entries per token; completions answer `{"text_offset",
"token_logprobs", "tokens", "top_logprobs": [{token: logprob}]}` with `max(k, 1)` entries
per token (vLLM: the top `k` plus the sampled token, which is the top one here).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from data_plane.inference.simulator.text import VOCABULARY


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    text: str
    logprob: float
    top: tuple[tuple[str, float], ...]
    """The alternatives, most likely first (the sampled token is the first)."""


def _unit(*parts: int) -> float:
    """A stable number in [0, 1) from integers."""
    return zlib.crc32(",".join(map(str, parts)).encode()) / 2**32


def token_logprob(text: str, token_id: int, position: int, alternatives: int) -> TokenLogprob:
    """The log-probability of one sampled token and its `alternatives` runners-up."""
    best = -0.05 - 2.0 * _unit(token_id, position)
    top: list[tuple[str, float]] = [(text, best)]
    value = best
    start = int(_unit(position, token_id, 7) * len(VOCABULARY))
    offset = 0
    while len(top) < alternatives:
        word = " " + VOCABULARY[(start + offset) % len(VOCABULARY)]
        offset += 1
        if word == text:
            continue
        value -= 0.25 + _unit(token_id, position, len(top))
        top.append((word, value))
    return TokenLogprob(text, best, tuple(top))


def _bytes(text: str) -> list[int]:
    return list(text.encode("utf-8", errors="replace"))


def chat_logprobs(entries: Sequence[TokenLogprob], top_logprobs: int) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": entry.text,
                "logprob": entry.logprob,
                "bytes": _bytes(entry.text),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": _bytes(t)}
                    for t, lp in entry.top[:top_logprobs]
                ],
            }
            for entry in entries
        ]
    }


def completion_logprobs(
    entries: Sequence[TokenLogprob], logprobs: int, text_offset: int
) -> dict[str, Any]:
    offsets: list[int] = []
    position = text_offset
    for entry in entries:
        offsets.append(position)
        position += len(entry.text)
    return {
        "text_offset": offsets,
        "token_logprobs": [entry.logprob for entry in entries],
        "tokens": [entry.text for entry in entries],
        "top_logprobs": [dict(entry.top[: max(logprobs, 1)]) for entry in entries],
    }
