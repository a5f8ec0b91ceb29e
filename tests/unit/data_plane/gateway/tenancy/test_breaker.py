"""The quota store's circuit breaker (pure, virtual time)."""

from __future__ import annotations

import pytest

from data_plane.gateway.tenancy.breaker import BreakerPolicy, BreakerState, CircuitBreaker

POLICY = BreakerPolicy(failures=3, open_s=2, max_open_s=5)


def _opened(now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        breaker.failed(now)
    return breaker


@pytest.mark.parametrize(
    ("errors", "state"),
    [
        pytest.param(0, BreakerState.CLOSED, id="healthy"),
        pytest.param(2, BreakerState.CLOSED, id="below-threshold"),
        pytest.param(3, BreakerState.OPEN, id="at-threshold"),
        pytest.param(7, BreakerState.OPEN, id="beyond"),
    ],
)
def test_consecutive_errors_open_it(errors: int, state: BreakerState) -> None:
    breaker = CircuitBreaker(POLICY)
    opened = [breaker.failed(0) for _ in range(errors)]
    assert breaker.state is state
    assert opened.count(True) == (1 if state is BreakerState.OPEN else 0)


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(POLICY)
    breaker.failed(0)
    breaker.failed(0)
    assert breaker.succeeded() is False
    breaker.failed(0)
    breaker.failed(0)
    assert breaker.state is BreakerState.CLOSED


def test_open_skips_calls_then_lets_one_trial_through() -> None:
    breaker = _opened()
    assert not breaker.allow(1.9)
    assert breaker.retry_in(1.5) == pytest.approx(0.5)
    assert breaker.allow(2.0)  # the trial
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(2.1)  # only one at a time
    assert breaker.succeeded() is True  # recovered
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow(2.2)


def test_a_failed_trial_doubles_the_wait_up_to_the_cap() -> None:
    breaker = _opened()
    now = 2.0
    waits = []
    for _ in range(4):
        assert breaker.allow(now)
        breaker.failed(now)
        waits.append(breaker.retry_in(now))
        now += waits[-1]
    assert waits == [4, 5, 5, 5]
    assert breaker.allow(now)
    breaker.succeeded()
    assert breaker.retry_in(now) == 0
    for _ in range(3):
        breaker.failed(now)
    assert breaker.retry_in(now) == 2  # back to the first wait after a recovery
