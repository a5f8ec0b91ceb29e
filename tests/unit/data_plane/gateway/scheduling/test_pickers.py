"""Pickers: one of the kept indexes."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.scheduling.pickers import Best, InTurn


@settings(deadline=None)
@given(n=st.integers(1, 16), picks=st.integers(0, 200))
def test_in_turn_counts_differ_by_at_most_one(n: int, picks: int) -> None:
    picker = InTurn()
    counts = Counter(picker.pick((), range(n)) for _ in range(picks))
    per = [counts.get(i, 0) for i in range(n)]
    assert max(per) - min(per) <= 1


def test_in_turn_stays_among_the_kept() -> None:
    picker = InTurn()
    assert {picker.pick((), [1, 3]) for _ in range(6)} == {1, 3}


@settings(deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=16), st.data())
def test_best_picks_a_maximum_of_the_kept(scores: list[float], data: st.DataObject) -> None:
    kept = data.draw(st.lists(st.sampled_from(range(len(scores))), min_size=1, unique=True))
    index = Best().pick(scores, kept)
    assert index in kept
    assert scores[index] == max(scores[i] for i in kept)


def test_best_shares_ties_in_turn() -> None:
    picker = Best()
    scores = [0.5, 1.0, 1.0, 1.0]
    assert {picker.pick(scores, range(4)) for _ in range(6)} == {1, 2, 3}
