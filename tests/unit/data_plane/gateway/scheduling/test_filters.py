"""Filters: a table per rule, and the staged admission run by `keep_all`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.routing import RouteRequest
from data_plane.gateway.scheduling.filters import (
    AdapterLoaded,
    BoundedLoad,
    Healthy,
    NotTried,
    Ready,
    UnderCap,
    keep_all,
)
from tests.unit.data_plane.gateway.scheduling.replicas import R, loads


def test_ready_keeps_ready_replicas() -> None:
    replicas = [R("a"), R("b", ready=False)]
    assert Ready().keep(replicas, RouteRequest(None, "")) == [True, False]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(5.0, [True, False], id="within-the-cooldown"),
        pytest.param(10.0, [True, True], id="cooldown-over"),
    ],
)
def test_healthy_reads_the_request_clock(now: float, expected: list[bool]) -> None:
    replicas = [R("a"), R("b", ejected_until=10.0)]
    assert Healthy().keep(replicas, RouteRequest(None, "", now=now)) == expected


def test_not_tried_goes_by_identity() -> None:
    a, b, twin = R("a"), R("b"), R("a")  # same name, another replica
    assert NotTried().keep([a, b, twin], RouteRequest(None, "", tried=(a,))) == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("adapter", "expected"),
    [
        pytest.param(None, [True, True], id="base-model-anywhere"),
        pytest.param("sql", [True, False], id="only-where-loaded"),
        pytest.param("chat", [False, False], id="loaded-nowhere"),
    ],
)
def test_adapter_loaded(adapter: str | None, expected: list[bool]) -> None:
    replicas = [R("a", adapters=frozenset({"sql"})), R("b")]
    assert AdapterLoaded().keep(replicas, RouteRequest(adapter, "")) == expected


@pytest.mark.parametrize(
    ("cap", "in_flight", "waiting", "over_cap", "expected"),
    [
        pytest.param(0, [9, 9], [0, 0], 0, [True, True], id="no-cap"),
        pytest.param(2, [2, 1], [0, 0], 0, [False, True], id="under-the-cap"),
        pytest.param(2, [2, 1], [0, 0], 2, [False, True], id="under-first-even-with-allowance"),
        pytest.param(2, [2, 2], [0, 0], 0, [False, False], id="all-at-cap-wait"),
        pytest.param(2, [2, 2], [0, 0], 2, [True, True], id="all-at-cap-overcommit"),
        pytest.param(2, [4, 3], [0, 3], 2, [False, False], id="overcommitted-or-queueing"),
        pytest.param(2, [3, 2], [0, 0], 2, [True, True], id="less-than-allowance-over"),
    ],
)
def test_under_cap_with_the_overcommit_allowance(
    cap: int, in_flight: list[int], waiting: list[int], over_cap: int, expected: list[bool]
) -> None:
    replicas = loads(*zip(in_flight, waiting, strict=True))
    request = RouteRequest(None, "", over_cap=over_cap)
    assert UnderCap(cap).keep(replicas, request) == expected


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param([(0, 0), (0, 0)], [True, True], id="idle"),
        # total 10 + 1 over 2 replicas x 1.25 -> bound 7: the one at 9 is over it
        pytest.param([(9, 0), (1, 0)], [False, True], id="one-over-the-bound"),
        pytest.param([(3, 3), (1, 0)], [False, True], id="waiting-counts-as-load"),
    ],
)
def test_bounded_load(pairs: list[tuple[int, int]], expected: list[bool]) -> None:
    assert BoundedLoad(1.25).keep(loads(*pairs), RouteRequest(None, "")) == expected


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=16))
def test_bounded_load_always_keeps_the_least_loaded(pairs: list[tuple[int, int]]) -> None:
    flags = BoundedLoad(1.0).keep(loads(*pairs), RouteRequest(None, ""))
    least = min(range(len(pairs)), key=lambda i: sum(pairs[i]))
    assert flags[least]


def test_bounded_load_refuses_a_factor_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BoundedLoad(0.9)


def test_keep_all_applies_the_filters_in_order() -> None:
    a, b, c = R("a"), R("b", ready=False), R("c", ejected_until=5.0)
    request = RouteRequest(None, "", now=1.0, tried=(a,))
    assert keep_all((Ready(), Healthy(), NotTried()), [a, b, c], request) == []
    assert keep_all((Ready(),), [a, b, c], request) == [a, c]
    assert keep_all((), [a, b], request) == [a, b]
