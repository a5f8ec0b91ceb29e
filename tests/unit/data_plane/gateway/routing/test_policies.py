"""Routing policies: tables for the rules, hypothesis for the invariants."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.routing import (
    DefaultPolicy,
    HashRing,
    LeastLoad,
    LoraAffinity,
    PrefixAffinity,
    RoundRobin,
    RouteRequest,
    make_policy,
)


@dataclass
class R:
    name: str
    in_flight: int = 0
    waiting: int = 0
    running_adapters: frozenset[str] | None = None
    max_loras: int = 4


def fleet(n: int) -> list[R]:
    return [R(f"r{i}") for i in range(n)]


loads = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=16)


def with_loads(pairs: list[tuple[int, int]]) -> list[R]:
    return [R(f"r{i}", a, b) for i, (a, b) in enumerate(pairs)]


@given(n=st.integers(1, 16), requests=st.integers(0, 200))
def test_round_robin_counts_differ_by_at_most_one(n: int, requests: int) -> None:
    policy = RoundRobin()
    replicas = fleet(n)
    counts = Counter(policy.choose(replicas, RouteRequest(None, ""))[0] for _ in range(requests))
    per = [counts.get(i, 0) for i in range(n)]
    assert max(per) - min(per) <= 1


@given(pairs=loads)
def test_least_load_picks_a_minimum(pairs: list[tuple[int, int]]) -> None:
    replicas = with_loads(pairs)
    index, _ = LeastLoad().choose(replicas, RouteRequest(None, ""))
    assert sum(pairs[index]) == min(a + b for a, b in pairs)


def test_least_load_shares_ties() -> None:
    policy = LeastLoad()
    replicas = fleet(3)
    picks = {policy.choose(replicas, RouteRequest(None, ""))[0] for _ in range(6)}
    assert picks == {0, 1, 2}


@settings(max_examples=200)
@given(pairs=loads, prefix=st.text(max_size=50), adapter=st.none() | st.sampled_from(["a", "b"]))
def test_bounded_load_is_respected(
    pairs: list[tuple[int, int]], prefix: str, adapter: str | None
) -> None:
    replicas = with_loads(pairs)
    total = sum(a + b for a, b in pairs) + 1
    bound = max(1, math.ceil(total / len(pairs) * 1.25))
    for policy in (PrefixAffinity(1.25), DefaultPolicy(1.25)):
        index, _ = policy.choose(replicas, RouteRequest(adapter, prefix))
        assert 0 <= index < len(replicas)
        assert sum(pairs[index]) + 1 <= bound


@given(prefix=st.text(min_size=1, max_size=40), n=st.integers(2, 16))
def test_prefix_affinity_is_sticky_when_idle(prefix: str, n: int) -> None:
    policy = PrefixAffinity()
    replicas = fleet(n)
    first, reason = policy.choose(replicas, RouteRequest(None, prefix))
    assert reason == "prefix-hit"
    assert policy.choose(replicas, RouteRequest(None, prefix))[0] == first


def test_prefix_key_includes_the_adapter() -> None:
    replicas = fleet(16)
    policy = PrefixAffinity()
    owners = {policy.choose(replicas, RouteRequest(a, "same prompt"))[0] for a in "abcdefghij"}
    assert len(owners) > 1


def test_prefix_affinity_spills_to_least_load_when_the_owner_is_overloaded() -> None:
    replicas = fleet(4)
    policy = PrefixAffinity(load_factor=1.0)
    owner, _ = policy.choose(replicas, RouteRequest(None, "p"))
    replicas[owner].in_flight = 10
    index, reason = policy.choose(replicas, RouteRequest(None, "p"))
    assert reason == "prefix-overloaded"
    assert index != owner
    assert replicas[index].in_flight == 0


@given(
    names=st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=12, unique=True),
    key=st.integers(0, 2**64 - 1),
)
def test_removing_a_member_moves_only_its_keys(names: list[str], key: int) -> None:
    full = HashRing(names)
    owner = full.members[full.owner(key)]
    gone = names[-1]
    smaller = HashRing(names[:-1])
    if owner != gone:
        assert smaller.members[smaller.owner(key)] == owner


def test_ring_walk_visits_each_member_once() -> None:
    ring = HashRing(["a", "b", "c"])
    assert sorted(ring.walk(12345)) == [0, 1, 2]


@pytest.mark.parametrize(
    ("running", "expected", "reason"),
    [
        pytest.param([None, frozenset({"x"}), frozenset()], 1, "lora-active", id="active-wins"),
        pytest.param(
            [frozenset({"a", "b", "c", "d"}), frozenset({"a"})], 1, "lora-free-slot", id="free-slot"
        ),
        pytest.param([frozenset({"a", "b", "c", "d"})] * 2, None, "lora-full", id="all-full"),
    ],
)
def test_lora_affinity_tiers(
    running: list[frozenset[str] | None], expected: int | None, reason: str
) -> None:
    replicas = [R(f"r{i}", running_adapters=r) for i, r in enumerate(running)]
    index, why = LoraAffinity().choose(replicas, RouteRequest("x", ""))
    assert why == reason
    if expected is not None:
        assert index == expected


def test_default_prefers_the_active_adapter_within_the_bound() -> None:
    replicas = [R("r0", running_adapters=frozenset()), R("r1", running_adapters=frozenset({"x"}))]
    for prefix in ("a", "b", "c", "d"):
        assert DefaultPolicy().choose(replicas, RouteRequest("x", prefix))[0] == 1
    replicas[1].in_flight = 10  # over the bound: the other replica takes it
    assert DefaultPolicy().choose(replicas, RouteRequest("x", "a"))[0] == 0


def test_make_policy_knows_every_name_and_refuses_others() -> None:
    for name in ("default", "round-robin", "least-load", "prefix-affinity", "lora-affinity"):
        assert make_policy(name).name == name
    with pytest.raises(ValueError, match="unknown routing policy"):
        make_policy("random")
