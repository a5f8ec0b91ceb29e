"""The precise prefix-cache scorer: how much of the request's prompt each replica holds,
by the engines' own account (their KV-cache events, kept in a `KvBlockIndex`).

    score(candidate) = longest run of the prompt's blocks, from its first, that the
                       candidate holds / number of full blocks in the prompt

in [0, 1], one per candidate in order (the scheduling pipeline's `Scorer` interface). A
replica whose events have not said its block size is scored with `default_block_size`.
A request whose prompt cannot be tokenized here (no body, an input the tokenizer does not
take) scores 0 everywhere. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from data_plane.gateway.kv_events.block_keys import prompt_keys
from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.routing.policy import ReplicaLoad, RouteRequest

PromptTokens = Callable[[bytes], tuple[list[int], str | None] | None]
"""A request body -> (prompt token ids as the engine tokenizes them, cache_salt)."""


class PrecisePrefixScorer:
    name = "precise-prefix"

    def __init__(
        self, index: KvBlockIndex, prompt_tokens: PromptTokens, default_block_size: int = 16
    ) -> None:
        self.index = index
        self.prompt_tokens = prompt_tokens
        self.default_block_size = default_block_size

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> list[float]:
        scores = [0.0] * len(candidates)
        if request.body is None:
            return scores
        prompt = self.prompt_tokens(request.body)
        if prompt is None:
            return scores
        tokens, salt = prompt
        by_size: dict[int, list[int]] = {}
        for i, candidate in enumerate(candidates):
            size = self.index.block_size(candidate.name) or self.default_block_size
            by_size.setdefault(size, []).append(i)
        for size, members in by_size.items():
            keys = prompt_keys(tokens, size, adapter=request.adapter, salt=salt)
            if not keys:
                continue
            for i, held in self._held(candidates, members, keys).items():
                scores[i] = held / len(keys)
        return scores

    def _held(
        self, candidates: Sequence[ReplicaLoad], members: list[int], keys: list[int]
    ) -> dict[int, int]:
        """Per member: how many of the leading `keys` it holds (members holding none left out)."""
        alive = {candidates[i].name: i for i in members}
        held: dict[int, int] = {}
        for depth, key in enumerate(keys, start=1):
            holders = self.index.holders(key)
            if not holders:
                break
            alive = {name: i for name, i in alive.items() if name in holders}
            if not alive:
                break
            for i in alive.values():
                held[i] = depth
        return held
