"""The pure part of list-then-watch: events applied to the cache, bounded backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.gateway.discovery.watch_state import apply_event, backoff_s, by_name


def obj(name: str, version: str = "1", **extra: object) -> dict[str, object]:
    return {"metadata": {"name": name, "resourceVersion": version}, **extra}


@pytest.mark.parametrize(
    ("event", "incoming", "changed", "names"),
    [
        pytest.param("ADDED", obj("b"), True, ["a", "b"], id="added"),
        pytest.param("MODIFIED", obj("a", "2", spec=1), True, ["a"], id="modified"),
        pytest.param("MODIFIED", obj("a"), False, ["a"], id="same-object"),
        pytest.param("DELETED", obj("a"), True, [], id="deleted"),
        pytest.param("DELETED", obj("z"), False, ["a"], id="deleted-unknown"),
        pytest.param(
            "BOOKMARK", {"metadata": {"resourceVersion": "9"}}, False, ["a"], id="bookmark"
        ),
    ],
)
def test_events_update_the_cache(
    event: str, incoming: dict[str, object], changed: bool, names: list[str]
) -> None:
    cache = by_name([obj("a")])
    assert apply_event(cache, event, incoming) is changed
    assert sorted(cache) == names


@given(st.integers(min_value=-3, max_value=500), st.floats(0.01, 5), st.floats(0.01, 60))
def test_backoff_is_never_zero_and_never_above_the_cap(
    attempt: int, base: float, cap: float
) -> None:
    wait = backoff_s(attempt, base=base, cap=cap)
    assert 0.01 <= wait <= max(cap, 0.01)
    assert backoff_s(attempt + 1, base=base, cap=cap) >= wait
