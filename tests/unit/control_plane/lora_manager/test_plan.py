from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from control_plane.api import LoraAdapterSpec, Placement
from control_plane.lora_manager.placement import PodView, SidecarAdapter, SidecarPhase
from control_plane.lora_manager.plan import assume_placed, orphans, plan_adapter, plan_removal

SRC = "s3://bucket/sql-lora"


def spec(
    replicas: int | str = "all", source: str = SRC, sha256: str | None = None
) -> LoraAdapterSpec:
    return LoraAdapterSpec.model_validate(
        {
            "baseModel": "base",
            "source": source,
            "sha256": sha256,
            "placement": {"replicas": replicas},
        }
    )


def held(
    phase: SidecarPhase = SidecarPhase.LOADED, source: str = SRC, sha: str | None = None
) -> dict[str, SidecarAdapter]:
    return {"lora": SidecarAdapter("lora", phase, source, sha)}


def test_loads_where_missing_and_unloads_where_not_wanted() -> None:
    pods = [
        PodView("p0", "base", True, {}),
        PodView("p1", "base", True, held()),
        PodView("q0", "other", True, held()),
    ]
    plan = plan_adapter("lora", spec(), pods)
    assert plan.targets == ("p0", "p1")
    assert plan.loads == ("p0",)
    assert plan.unloads == ("q0",)
    assert plan.drift == ()


def test_changed_source_or_hash_reloads() -> None:
    pods = [
        PodView("p0", "base", True, held(source="s3://bucket/old")),
        PodView("p1", "base", True, held(sha="b" * 64)),
    ]
    assert plan_adapter("lora", spec(sha256="a" * 64), pods).loads == ("p0", "p1")


def test_failed_is_retried_only_outside_backoff() -> None:
    pods = [PodView("p0", "base", True, held(SidecarPhase.FAILED))]
    assert plan_adapter("lora", spec(), pods).loads == ("p0",)
    assert plan_adapter("lora", spec(), pods, retry_failed=False).loads == ()


def test_not_ready_pod_of_the_base_model_keeps_its_adapter() -> None:
    pods = [PodView("p0", "base", False, held()), PodView("p1", "base", True, {})]
    plan = plan_adapter("lora", spec(), pods)
    assert plan.unloads == ()
    assert plan.loads == ("p1",)


def test_placement_shrink_unloads_extras() -> None:
    pods = [PodView(f"p{i}", "base", True, held()) for i in range(3)]
    plan = plan_adapter("lora", spec(replicas=1), pods)
    assert len(plan.targets) == 1
    assert len(plan.unloads) == 2
    assert plan.loads == ()


def test_drift_is_a_reload_where_the_status_said_loaded() -> None:
    pods = [PodView("p0", "base", True, {}), PodView("p1", "base", True, {})]
    plan = plan_adapter("lora", spec(), pods, previously_loaded={"p0"})
    assert plan.drift == ("p0",)


def test_removal_plan() -> None:
    pods = [
        PodView("p0", "base", True, held()),
        PodView("p1", "base", True, None),
        PodView("p2", "base", False, None),
        PodView("p3", "base", True, {}),
    ]
    removal = plan_removal("lora", pods)
    assert removal.unloads == ("p0",)
    assert removal.unknown == ("p1",)
    assert not removal.complete


def test_orphans() -> None:
    pod = PodView(
        "p0",
        "base",
        True,
        {
            "a": SidecarAdapter("a", SidecarPhase.LOADED),
            "b": SidecarAdapter("b", SidecarPhase.LOADING),
        },
    )
    assert orphans({"base": {"a"}}, pod) == ("b",)
    assert orphans({}, PodView("p1", "base", True, None)) == ()


def test_assume_placed_counts_the_planned_adapter() -> None:
    pods = [PodView("p0", "base", True, {}), PodView("p1", "base", True, {})]
    first = plan_adapter("a", spec(replicas=1), pods)
    after = assume_placed(pods, first)
    second = plan_adapter("b", spec(replicas=1), after)
    assert first.targets != second.targets


@given(
    holders=st.lists(st.booleans(), min_size=1, max_size=6),
    ready=st.lists(st.booleans(), min_size=6, max_size=6),
    replicas=st.one_of(st.just("all"), st.integers(1, 6)),
)
def test_plan_properties(holders: list[bool], ready: list[bool], replicas: int | str) -> None:
    pods = [PodView(f"p{i}", "base", ready[i], held() if h else {}) for i, h in enumerate(holders)]
    plan = plan_adapter("lora", spec(replicas=replicas), pods)
    assert set(plan.loads) <= set(plan.targets)
    assert not set(plan.unloads) & set(plan.targets)
    # after applying the plan, exactly the targets hold it among the ready pods
    after = {p.name for p in pods if p.holds("lora")} | set(plan.loads)
    after -= set(plan.unloads)
    ready_after = {name for name in after if next(p for p in pods if p.name == name).ready}
    assert ready_after == set(plan.targets)
    assert Placement.model_validate({"replicas": replicas})  # sanity
