from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.inference.sidecar_runtime.plan import (
    Desired,
    EngineView,
    EngineWatch,
    Load,
    Phase,
    Refusal,
    Retry,
    after_failure,
    already_serving,
    loads_needed,
    observe,
    reload_still_due,
    report,
    retry_delay,
)


def want(name: str) -> Desired:
    return Desired(name, f"/d/{name}", f"src-{name}", "0" * 64)


UP = EngineView(healthy=True, adapters=frozenset())
DOWN = EngineView(healthy=False, adapters=frozenset())


def up(*names: str) -> EngineView:
    return EngineView(healthy=True, adapters=frozenset(names))


@pytest.mark.parametrize(
    ("desired", "view", "retries", "expected"),
    [
        pytest.param([], up("x"), {}, [], id="nothing-desired-unknown-left-alone"),
        pytest.param(["a", "b"], up("a"), {}, [Load("b", "/d/b")], id="loads-missing"),
        pytest.param(["b", "a"], UP, {}, [Load("a", "/d/a"), Load("b", "/d/b")], id="sorted"),
        pytest.param(["a"], DOWN, {}, [], id="engine-down-waits"),
        pytest.param(["a"], UP, {"a": Retry(1, 11.0, "x")}, [], id="backing-off"),
        pytest.param(["a"], UP, {"a": Retry(1, 10.0, "x")}, [Load("a", "/d/a")], id="backoff-over"),
    ],
)
def test_loads_needed(
    desired: list[str], view: EngineView, retries: dict[str, Retry], expected: list[Load]
) -> None:
    got = loads_needed({n: want(n) for n in desired}, view, retries, now=10.0)
    assert got == expected


@pytest.mark.parametrize(
    ("watch", "view", "believed", "restarts"),
    [
        pytest.param(EngineWatch(), UP, frozenset(), 0, id="first-healthy"),
        pytest.param(EngineWatch(True, True, 0), DOWN, frozenset(), 0, id="goes-down"),
        pytest.param(EngineWatch(False, True, 0), UP, frozenset(), 1, id="comes-back"),
        pytest.param(EngineWatch(True, True, 0), up("a"), frozenset({"a"}), 0, id="steady"),
        pytest.param(EngineWatch(True, True, 2), UP, frozenset({"a"}), 3, id="lost-adapters"),
        pytest.param(EngineWatch(False, False, 0), DOWN, frozenset(), 0, id="never-up"),
    ],
)
def test_observe_counts_restarts(
    watch: EngineWatch, view: EngineView, believed: frozenset[str], restarts: int
) -> None:
    assert observe(watch, view, believed).restarts == restarts


@pytest.mark.parametrize(
    ("current", "source", "sha256", "view", "expected"),
    [
        pytest.param(want("a"), "src-a", None, up("a"), True, id="same-source-loaded"),
        pytest.param(want("a"), "src-a", "0" * 64, up("a"), True, id="same-digest-loaded"),
        pytest.param(want("a"), "src-a", "1" * 64, up("a"), False, id="other-digest"),
        pytest.param(want("a"), "src-b", None, up("a"), False, id="other-source"),
        pytest.param(want("a"), "src-a", None, UP, False, id="engine-lost-it"),
        pytest.param(
            want("a"), "src-a", None, EngineView(False, frozenset({"a"})), False, id="engine-down"
        ),
        pytest.param(None, "src-a", None, up("a"), False, id="not-desired"),
    ],
)
def test_already_serving(
    current: Desired | None, source: str, sha256: str | None, view: EngineView, expected: bool
) -> None:
    assert already_serving(current, source, sha256, view) is expected


@pytest.mark.parametrize(
    ("load", "view", "expected"),
    [
        pytest.param(Load("a", "/d/a"), UP, True, id="still-missing"),
        pytest.param(Load("a", "/d/a"), up("a"), False, id="loaded-meanwhile"),
        pytest.param(Load("a", "/d/old"), UP, False, id="replaced-meanwhile"),
    ],
)
def test_reload_still_due(load: Load, view: EngineView, expected: bool) -> None:
    assert reload_still_due(load, want("a"), view) is expected


def test_report_only_says_loaded_when_the_engine_lists_it() -> None:
    desired = {n: want(n) for n in ("a", "b", "c", "d")}
    retries = {"c": Retry(2, 0.0, "boom")}
    refused = {"e": Refusal("src-e", "DigestMismatch", "sha256 differs")}
    got = report(desired, up("a"), retries, refused)
    assert list(got) == ["a", "b", "c", "d", "e"]
    assert got["a"].phase is Phase.LOADED
    assert got["b"].phase is Phase.LOADING
    assert got["b"].reason == "Pending"
    assert got["c"].reason == "LoadFailed"
    assert got["c"].attempts == 2
    assert got["e"].phase is Phase.FAILED
    assert got["e"].reason == "DigestMismatch"
    down = report(desired, EngineView(healthy=False, adapters=frozenset({"a"})), {}, {})
    assert {r.phase for r in down.values()} == {Phase.LOADING}
    assert {r.reason for r in down.values()} == {"EngineNotReady"}


def test_after_failure_backs_off() -> None:
    first = after_failure(None, "x", now=100.0, base=1, cap=8)
    assert (first.attempts, first.not_before) == (1, 101.0)
    second = after_failure(first, "y", now=101.0, base=1, cap=8)
    assert (second.attempts, second.not_before, second.message) == (2, 103.0, "y")


@given(attempts=st.integers(-5, 10_000), base=st.floats(0.01, 10), cap=st.floats(10, 1000))
def test_retry_delay_bounded(attempts: int, base: float, cap: float) -> None:
    delay = retry_delay(attempts, base=base, cap=cap)
    assert 0 <= delay <= cap
    if attempts >= 1:
        assert delay >= min(base, cap)


@given(
    desired=st.sets(st.sampled_from("abcdef")),
    listed=st.sets(st.sampled_from("abcdefgh")),
    healthy=st.booleans(),
)
def test_loaded_report_never_exceeds_what_the_engine_lists(
    desired: set[str], listed: set[str], healthy: bool
) -> None:
    view = EngineView(healthy=healthy, adapters=frozenset(listed))
    got = report({n: want(n) for n in desired}, view, {}, {})
    loaded = {n for n, r in got.items() if r.phase is Phase.LOADED}
    assert loaded == (desired & listed if healthy else set())
    loads = {load.name for load in loads_needed({n: want(n) for n in desired}, view, {}, now=0)}
    assert loads == (desired - listed if healthy else set())
