"""The watchdog's decision: starting vs healthy vs unresponsive vs hung (pure, table-tested)."""

from __future__ import annotations

import pytest

from control_plane.api.liveness import (
    History,
    Liveness,
    LivenessPolicy,
    Probe,
    RestartReason,
    Verdict,
    judge,
    observe,
)

POLICY = LivenessPolicy(unresponsive_after_s=10, min_failures=3, start_timeout_s=100)


def _run(probes: list[tuple[float, Probe]], *, started_at: float = 0.0) -> History:
    history = History(started_at=started_at)
    for at, probe in probes:
        history = observe(history, probe, at)
    return history


@pytest.mark.parametrize(
    ("probes", "now", "state"),
    [
        pytest.param([], 5, Liveness.STARTING, id="nothing-yet"),
        pytest.param(
            [(t, Probe.REFUSED) for t in range(1, 90)], 90, Liveness.STARTING, id="slow-load"
        ),
        pytest.param(
            [(t, Probe.FAILED) for t in range(1, 90)],
            90,
            Liveness.STARTING,
            id="slow-load-port-open-but-not-answering",
        ),
        pytest.param([(1, Probe.REFUSED)], 101, Liveness.START_TIMED_OUT, id="start-timeout"),
        pytest.param([(60, Probe.OK)], 61, Liveness.HEALTHY, id="loaded"),
        pytest.param(
            [(60, Probe.OK), (61, Probe.FAILED)], 62, Liveness.UNRESPONSIVE, id="one-miss"
        ),
        pytest.param(
            [(60, Probe.OK), (61, Probe.FAILED), (62, Probe.FAILED), (63, Probe.FAILED)],
            65,
            Liveness.UNRESPONSIVE,
            id="misses-within-the-bound",
        ),
        pytest.param(
            [(60, Probe.OK), *[(t, Probe.FAILED) for t in range(61, 72)]],
            72,
            Liveness.HUNG,
            id="hung-past-the-bound",
        ),
        pytest.param(
            [(60, Probe.OK), (75, Probe.FAILED)],
            75,
            Liveness.UNRESPONSIVE,
            id="a-stalled-watcher-is-no-hang",
        ),
        pytest.param(
            [(60, Probe.OK), *[(t, Probe.FAILED) for t in range(61, 70)], (70, Probe.OK)],
            71,
            Liveness.HEALTHY,
            id="recovered-before-the-bound",
        ),
        pytest.param(
            [(60, Probe.OK), (61, Probe.FAILED), (62, Probe.REFUSED)],
            80,
            Liveness.STARTING,
            id="gone-from-its-port-is-a-restart-not-a-hang",
        ),
    ],
)
def test_verdicts(probes: list[tuple[float, Probe]], now: float, state: Liveness) -> None:
    assert judge(POLICY, _run(probes), now).state is state


def test_restarting_after_refusal_is_bounded_by_the_start_timeout() -> None:
    history = _run([(60, Probe.OK), (62, Probe.REFUSED)])
    assert history.started_at == 62
    assert not judge(POLICY, history, 161).restart
    assert judge(POLICY, history, 163).reason is RestartReason.START_TIMEOUT


@pytest.mark.parametrize(
    ("state", "restart", "reason"),
    [
        (Liveness.STARTING, False, None),
        (Liveness.HEALTHY, False, None),
        (Liveness.UNRESPONSIVE, False, None),
        (Liveness.HUNG, True, RestartReason.UNRESPONSIVE),
        (Liveness.START_TIMED_OUT, True, RestartReason.START_TIMEOUT),
    ],
)
def test_only_hung_and_timed_out_restart(
    state: Liveness, restart: bool, reason: RestartReason | None
) -> None:
    verdict = Verdict(state, "")
    assert verdict.restart is restart
    assert verdict.reason is reason


def test_a_hang_message_says_how_long_and_the_bound() -> None:
    history = _run([(0, Probe.OK), *[(t, Probe.FAILED) for t in range(1, 13)]])
    verdict = judge(POLICY, history, 12)
    assert verdict.restart
    assert "12.0s" in verdict.message and "bound 10s" in verdict.message


def test_healthy_at_starts_healthy() -> None:
    assert judge(POLICY, History.healthy_at(5), 5).state is Liveness.HEALTHY
