"""Pickers: one candidate from the kept ones and their combined scores (pure).

- `InTurn`: each in turn, scores unread (round robin: over a fixed candidate set the
  counts differ by at most one).
- `Best`: the highest combined score; ties go in turn, so that equal replicas share.
"""

from __future__ import annotations

from collections.abc import Sequence


class InTurn:
    name = "in-turn"

    def __init__(self) -> None:
        self._next = 0

    def pick(self, scores: Sequence[float], kept: Sequence[int]) -> int:
        index = kept[self._next % len(kept)]
        self._next += 1
        return index


class Best:
    name = "best"

    def __init__(self) -> None:
        self._turn = 0

    def pick(self, scores: Sequence[float], kept: Sequence[int]) -> int:
        """The first best of `kept` in turn order: from the turn's place, wrapping around."""
        self._turn += 1
        values = scores if kept == range(len(scores)) else [scores[i] for i in kept]
        top = max(values)
        start = self._turn % len(kept)
        try:
            return kept[values.index(top, start)]
        except ValueError:
            return kept[values.index(top)]
