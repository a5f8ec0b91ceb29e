from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.api import Placement, PlacementPolicy
from control_plane.lora_manager.placement import (
    PodView,
    SidecarAdapter,
    SidecarPhase,
    choose_pods,
)


def pod(
    name: str,
    model: str = "base",
    *,
    ready: bool = True,
    adapters: tuple[str, ...] | None = (),
    in_flight: float = 0.0,
    phase: SidecarPhase = SidecarPhase.LOADED,
) -> PodView:
    held = None if adapters is None else {a: SidecarAdapter(a, phase) for a in adapters}
    return PodView(name, model, ready, held, in_flight)


@pytest.mark.parametrize(
    ("replicas", "policy", "pods", "expected"),
    [
        pytest.param("all", "fewest-adapters", [pod("p0"), pod("p1")], ("p0", "p1"), id="all"),
        pytest.param(
            "all",
            "fewest-adapters",
            [pod("p0"), pod("p1", "other"), pod("p2", ready=False), pod("p3", adapters=None)],
            ("p0",),
            id="all-only-ready-reachable-pods-of-the-base-model",
        ),
        pytest.param(
            1,
            "fewest-adapters",
            [
                pod("p0", adapters=("a", "b")),
                pod("p1", adapters=("c",)),
                pod("p2", adapters=("a", "c")),
            ],
            ("p1",),
            id="fewest-adapters",
        ),
        pytest.param(
            2,
            "least-loaded",
            [pod("p0", in_flight=5), pod("p1", in_flight=1), pod("p2", in_flight=0)],
            ("p1", "p2"),
            id="least-loaded",
        ),
        pytest.param(
            1,
            "fewest-adapters",
            [pod("p0"), pod("p1", adapters=("x", "y", "lora"))],
            ("p1",),
            id="sticky-holder-is-kept",
        ),
        pytest.param(
            1,
            "fewest-adapters",
            [pod("p0"), pod("p1", adapters=("x", "lora"), phase=SidecarPhase.FAILED)],
            ("p0",),
            id="failed-holder-is-not-sticky",
        ),
        pytest.param(
            5, "fewest-adapters", [pod("p0"), pod("p1")], ("p0", "p1"), id="fewer-pods-than-asked"
        ),
        pytest.param(1, "fewest-adapters", [], (), id="no-pods"),
    ],
)
def test_choose_pods(
    replicas: int | str, policy: str, pods: list[PodView], expected: tuple[str, ...]
) -> None:
    placement = Placement.model_validate({"replicas": replicas, "policy": policy})
    assert choose_pods("lora", "base", placement, pods) == expected


def test_same_counts_spread_over_pods() -> None:
    pods = [pod(f"p{i}") for i in range(4)]
    one = Placement(replicas=1)
    chosen = {choose_pods(f"adapter-{i}", "base", one, pods) for i in range(16)}
    assert len(chosen) > 1, "rendezvous tie-break should not pile every adapter on one pod"


pods_strategy = st.lists(
    st.builds(
        pod,
        name=st.sampled_from([f"p{i}" for i in range(8)]),
        model=st.sampled_from(["base", "other"]),
        ready=st.booleans(),
        adapters=st.one_of(
            st.none(), st.lists(st.sampled_from(["lora", "x", "y", "z"]), unique=True).map(tuple)
        ),
        in_flight=st.floats(min_value=0, max_value=100),
    ),
    unique_by=lambda p: p.name,
    max_size=8,
)
placements = st.builds(
    Placement,
    replicas=st.one_of(st.just("all"), st.integers(min_value=1, max_value=10)),
    policy=st.sampled_from(list(PlacementPolicy)),
)


@given(pods=pods_strategy, placement=placements, data=st.data())
def test_placement_properties(
    pods: list[PodView], placement: Placement, data: st.DataObject
) -> None:
    chosen = choose_pods("lora", "base", placement, pods)
    by_name = {p.name: p for p in pods}
    # never more pods than asked
    if placement.replicas != "all":
        assert len(chosen) <= placement.replicas
    # never a pod of another base model, never one not ready or unreachable
    for name in chosen:
        assert by_name[name].model == "base"
        assert by_name[name].ready
        assert by_name[name].reachable
    # as many as possible
    candidates = [p for p in pods if p.model == "base" and p.ready and p.reachable]
    wanted = len(candidates) if placement.replicas == "all" else placement.replicas
    assert len(chosen) == min(wanted, len(candidates))
    # stable under re-ordering of the pod list
    shuffled = data.draw(st.permutations(pods))
    assert choose_pods("lora", "base", placement, shuffled) == chosen
    # no duplicates, sorted
    assert list(chosen) == sorted(set(chosen))
