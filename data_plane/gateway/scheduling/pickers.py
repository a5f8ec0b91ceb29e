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
        self._turn += 1
        n = len(kept)
        best = kept[self._turn % n]
        best_score = scores[best]
        for k in range(1, n):
            i = kept[(self._turn + k) % n]
            if scores[i] > best_score:
                best, best_score = i, scores[i]
        return best
