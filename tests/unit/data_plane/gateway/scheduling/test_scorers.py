"""Scorers: one score in [0, 1] per candidate, same order, higher is better."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.routing import HashRing, RouteRequest
from data_plane.gateway.scheduling.scorers import Load, LoraTier, PrefixOwner, PrefixRing, Rings
from tests.unit.data_plane.gateway.scheduling.replicas import R, loads


@pytest.mark.parametrize(
    ("adapter", "running", "max_loras", "expected"),
    [
        pytest.param(None, frozenset(), 4, 1.0, id="base-model"),
        pytest.param("x", frozenset({"x"}), 4, 1.0, id="active"),
        pytest.param("x", frozenset({"a"}), 4, 0.8, id="free-slot"),
        pytest.param("x", None, 4, 0.8, id="engine-does-not-say"),
        pytest.param("x", frozenset({"a", "b"}), 2, 0.6, id="slots-full"),
    ],
)
def test_lora_tier(
    adapter: str | None, running: frozenset[str] | None, max_loras: int, expected: float
) -> None:
    replica = R("r", running_adapters=running, max_loras=max_loras)
    assert LoraTier().score([replica], RouteRequest(adapter, "")) == [expected]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param([(0, 0)], [1.0], id="idle"),
        pytest.param([(1, 0), (0, 3)], [0.5, 0.25], id="in-flight-and-waiting"),
    ],
)
def test_load(pairs: list[tuple[int, int]], expected: list[float]) -> None:
    assert Load().score(loads(*pairs), RouteRequest(None, "")) == expected


@settings(deadline=None)
@given(prefix=st.text(max_size=30), n=st.integers(1, 12))
def test_prefix_ring_ranks_the_ring_walk(prefix: str, n: int) -> None:
    replicas = [R(f"r{i}") for i in range(n)]
    request = RouteRequest("a", prefix)
    scores = PrefixRing().score(replicas, request)
    walk = list(HashRing([r.name for r in replicas]).walk(request.key_hash()))
    assert [scores[i] for i in walk] == [(n - k) / n for k in range(n)]  # owner 1, then less
    assert all(0 < s <= 1 for s in scores)


@settings(deadline=None)
@given(prefix=st.text(max_size=30), n=st.integers(1, 12))
def test_prefix_owner_marks_the_owner_alone(prefix: str, n: int) -> None:
    replicas = [R(f"r{i}") for i in range(n)]
    request = RouteRequest(None, prefix)
    scores = PrefixOwner().score(replicas, request)
    ring = PrefixRing().score(replicas, request)
    assert scores.count(1.0) == 1
    assert scores.index(1.0) == ring.index(1.0)
    assert sum(scores) == 1.0


def test_rings_are_built_once_per_candidate_set_and_bounded() -> None:
    rings = Rings(vnodes=4, size=2)
    ab, bc, ca = [R("a"), R("b")], [R("b"), R("c")], [R("c"), R("a")]
    first = rings.get(ab)
    assert rings.get([R("a"), R("b")]) is first  # by names, not by objects
    rings.get(bc)
    rings.get(ca)  # the least recently used set goes
    assert rings.get(ab) is not first


@settings(deadline=None)
@given(keys=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=20))
def test_remembered_ring_ranks_match_the_walk(keys: list[int]) -> None:
    ring = HashRing(["a", "b", "c", "d"], vnodes=8)
    for key in keys + keys:  # the second time from the memo
        order = list(ring.walk(key))
        assert [ring.ranks(key)[i] for i in order] == [0, 1, 2, 3]
