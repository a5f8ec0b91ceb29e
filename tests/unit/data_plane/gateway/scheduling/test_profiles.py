"""Profiles: the policies' rules end to end through filters, weights and the picker."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.routing import RouteRequest
from data_plane.gateway.scheduling import PROFILE_NAMES, Profile, Weighted, make_profile
from data_plane.gateway.scheduling.filters import BoundedLoad
from data_plane.gateway.scheduling.pickers import Best
from data_plane.gateway.scheduling.profiles import DefaultPolicy, PrefixAffinity
from data_plane.gateway.scheduling.scorers import Load, PrefixRing
from tests.unit.data_plane.gateway.scheduling.replicas import R, loads


def test_every_policy_name_is_a_profile() -> None:
    for name in PROFILE_NAMES:
        profile = make_profile(name)
        assert isinstance(profile, Profile)
        assert profile.name == name
    with pytest.raises(ValueError, match="unknown routing policy"):
        make_profile("random")


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_a_single_candidate_is_chosen(name: str) -> None:
    index, reason = make_profile(name).choose([R("only")], RouteRequest("x", "p"))
    assert index == 0
    assert reason


def _default_reference(replicas: list[R], request: RouteRequest) -> int:
    """The default's rule written out: within the bound, best LoRA tier, first on the ring."""
    from data_plane.gateway.routing import HashRing, load_bound, load_of, lora_score

    bound = load_bound(replicas, 1.25)
    eligible = [i for i, r in enumerate(replicas) if load_of(r) + 1 <= bound]
    best = max(lora_score(replicas[i], request.adapter) for i in eligible)
    eligible = [i for i in eligible if lora_score(replicas[i], request.adapter) == best]
    walk = HashRing([r.name for r in replicas]).walk(request.key_hash())
    return next(i for i in walk if i in eligible)


running = st.sampled_from([None, frozenset(), frozenset({"a"}), frozenset("abcd")])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5), running), min_size=1, max_size=12),
    st.none() | st.sampled_from(["a", "b"]),
    st.text(max_size=20),
)
def test_default_is_bounded_load_then_lora_tier_then_the_ring(
    rows: list[tuple[int, int, frozenset[str] | None]], adapter: str | None, prefix: str
) -> None:
    replicas = [R(f"r{i}", a, w, running_adapters=ra) for i, (a, w, ra) in enumerate(rows)]
    request = RouteRequest(adapter, prefix)
    index, reason = DefaultPolicy().choose(replicas, request)
    assert index == _default_reference(replicas, request)
    assert reason in {"prefix-hit", "prefix-spill"}


def test_default_spills_along_the_ring_and_says_so() -> None:
    replicas = [R(f"r{i}") for i in range(4)]
    profile = DefaultPolicy()
    owner, reason = profile.choose(replicas, RouteRequest(None, "p"))
    assert reason == "prefix-hit"
    replicas[owner].in_flight = 10
    second, reason = profile.choose(replicas, RouteRequest(None, "p"))
    assert (second != owner, reason) == (True, "prefix-spill")
    assert profile.choose(replicas, RouteRequest(None, "p"))[0] == second  # the same one


def test_prefix_affinity_overloaded_owner_goes_to_the_least_loaded() -> None:
    replicas = loads((0, 0), (0, 0), (0, 0))
    profile = PrefixAffinity(load_factor=1.0)
    owner, _ = profile.choose(replicas, RouteRequest(None, "p"))
    replicas[owner].in_flight = 10
    replicas[(owner + 1) % 3].in_flight = 1
    index, reason = profile.choose(replicas, RouteRequest(None, "p"))
    assert (index, reason) == ((owner + 2) % 3, "prefix-overloaded")


@pytest.mark.parametrize(
    ("running", "in_flight", "expected", "reason"),
    [
        pytest.param(
            [frozenset({"x"}), frozenset()], [5, 0], 0, "lora-active", id="tier-before-load"
        ),
        pytest.param([frozenset(), frozenset()], [5, 0], 1, "lora-free-slot", id="then-load"),
        pytest.param([frozenset("abcd")] * 2, [1, 0], 1, "lora-full", id="full-least-load"),
    ],
)
def test_lora_affinity(
    running: list[frozenset[str]], in_flight: list[int], expected: int, reason: str
) -> None:
    replicas = [
        R(f"r{i}", f, running_adapters=r)
        for i, (r, f) in enumerate(zip(running, in_flight, strict=True))
    ]
    assert make_profile("lora-affinity").choose(replicas, RouteRequest("x", "")) == (
        expected,
        reason,
    )


def test_a_filter_that_would_drop_everyone_is_passed_over() -> None:
    class Nobody:
        name = "nobody"

        def keep(self, candidates: object, request: object) -> list[bool]:
            return [False, False]

    profile = Profile(
        "custom",
        filters=[Nobody()],
        scorers=[Weighted(Load(), 1.0)],
        picker=Best(),
        reason=lambda request, winner: "least-load",
    )
    assert profile.choose(loads((3, 0), (1, 0)), RouteRequest(None, "")) == (1, "least-load")


def test_weights_combine_scorers() -> None:
    """Load alone would take r1; the prefix ring weighted above it keeps the owner."""
    replicas = loads((0, 0), (0, 0))
    ring = PrefixRing().score(replicas, RouteRequest(None, "k"))
    owner = ring.index(1.0)
    replicas[owner].in_flight = 1  # load score 0.5 against 1.0
    for weight, expected in ((0.1, 1 - owner), (10.0, owner)):
        profile = Profile(
            "custom",
            filters=[BoundedLoad(2.0)],
            scorers=[Weighted(Load(), 1.0), Weighted(PrefixRing(), weight)],
            picker=Best(),
            reason=lambda request, winner: "weighted",
        )
        assert profile.choose(replicas, RouteRequest(None, "k")) == (expected, "weighted")
