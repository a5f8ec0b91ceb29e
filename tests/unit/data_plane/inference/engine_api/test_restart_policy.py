from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.inference.engine_api.restart_policy import GiveUp, Restart, RestartPolicy, decide

POLICY = RestartPolicy(
    base_seconds=2, cap_seconds=60, max_failed_starts=3, healthy_reset_seconds=300
)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {
                "exit_code": 1,
                "became_ready": True,
                "ready_seconds": 10,
                "failed_starts": 0,
                "restarts": 0,
            },
            Restart(2),
            id="first-crash",
        ),
        pytest.param(
            {
                "exit_code": -9,
                "became_ready": True,
                "ready_seconds": 10,
                "failed_starts": 0,
                "restarts": 3,
            },
            Restart(16),
            id="backs-off",
        ),
        pytest.param(
            {
                "exit_code": -9,
                "became_ready": True,
                "ready_seconds": 301,
                "failed_starts": 0,
                "restarts": 5,
            },
            Restart(2),
            id="long-run-resets",
        ),
        pytest.param(
            {
                "exit_code": 1,
                "became_ready": False,
                "ready_seconds": 0,
                "failed_starts": 2,
                "restarts": 1,
            },
            Restart(4),
            id="failed-start-retried",
        ),
    ],
)
def test_restart(kwargs: dict[str, object], expected: Restart) -> None:
    assert decide(POLICY, **kwargs) == expected  # type: ignore[arg-type]


def test_argument_error_gives_up_at_once() -> None:
    got = decide(
        POLICY, exit_code=2, became_ready=False, ready_seconds=0, failed_starts=1, restarts=0
    )
    assert isinstance(got, GiveUp)
    assert "command line" in got.reason


def test_too_many_failed_starts_give_up() -> None:
    got = decide(
        POLICY, exit_code=1, became_ready=False, ready_seconds=0, failed_starts=3, restarts=2
    )
    assert isinstance(got, GiveUp)


@given(restarts=st.integers(0, 10_000), ready_seconds=st.floats(0, 1e6))
def test_delay_stays_within_bounds(restarts: int, ready_seconds: float) -> None:
    got = decide(
        POLICY, exit_code=-9, became_ready=True, ready_seconds=ready_seconds,
        failed_starts=0, restarts=restarts,
    )  # fmt: skip
    assert isinstance(got, Restart)
    assert POLICY.base_seconds <= got.delay_seconds <= POLICY.cap_seconds
