"""The soak benchmark's decisions: which fault a failure is owed to, the phases around a
fault, and the flatness verdict on RSS and file descriptors (not a benchmark)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# The benchmark scripts import their shared helpers by name, as `python bench/x.py` runs them.
sys.path.append(str(Path(__file__).resolve().parents[3] / "bench"))
from _soak_report import (
    UNEXPLAINED,
    FaultWindow,
    Phases,
    Sample,
    failures_by_window,
    fault_table,
    flatness,
    idle_back,
    owed_to,
    phases,
)

STOP = FaultWindow("#1 SIGSTOP", start=100.0, end=110.0)
KILL = FaultWindow("#2 SIGKILL", start=200.0, end=202.0)
GRACE = 10.0


@dataclass(frozen=True)
class R:
    started: float
    ended: float
    result: str = "error_event"


@pytest.mark.parametrize(
    ("started", "ended", "owner"),
    [
        pytest.param(90, 101, STOP.name, id="in-flight-when-the-fault-hit"),
        pytest.param(105, 106, STOP.name, id="inside-the-fault"),
        pytest.param(119, 125, STOP.name, id="sent-within-the-grace"),
        pytest.param(120.5, 121, UNEXPLAINED, id="sent-after-the-grace"),
        pytest.param(50, 99, UNEXPLAINED, id="ended-before-the-fault"),
        pytest.param(150, 199, UNEXPLAINED, id="between-faults"),
        pytest.param(199, 230, KILL.name, id="second-fault"),
    ],
)
def test_a_failure_is_owed_to_the_fault_it_was_in_flight_during(
    started: float, ended: float, owner: str
) -> None:
    assert owed_to(R(started, ended), [STOP, KILL], GRACE) == owner


def test_failures_are_counted_by_window_and_cause_and_successes_are_not() -> None:
    results = [
        R(101, 102),
        R(101, 102, "http_502"),
        R(150, 151, "no_answer"),
        R(150, 151, "ok"),
        R(201, 203),
    ]
    counted = failures_by_window(results, [STOP, KILL], GRACE)
    assert counted[STOP.name] == {"error_event": 1, "http_502": 1}
    assert counted[KILL.name] == {"error_event": 1}
    assert counted[UNEXPLAINED] == {"no_answer": 1}


def test_phases_stop_at_the_neighbouring_faults() -> None:
    first, second = phases([STOP, KILL], GRACE, phase_s=60, end=230)
    assert first == Phases(before=(40, 100), during=(100, 120), after=(120, 180))
    # Before the second fault: not before the first one's recovery; after: the run's end.
    assert second == Phases(before=(140, 200), during=(200, 212), after=(212, 230))
    assert phases([STOP], GRACE, phase_s=300, end=1000)[0].before == (0, 100)


def test_the_table_names_the_unexplained_failures() -> None:
    lines = fault_table([R(150, 151, "no_answer"), R(101, 102, "ok")], [STOP], GRACE, 60, 200)
    assert lines[-1].startswith("| **unexplained**")
    assert "**1** (no_answer 1)" in lines[-1]
    assert "| 0 (none) |" in lines[2]


def samples(process: str, pid: int, start: float, values: list[tuple[int, int]]) -> list[Sample]:
    """(rss, fds that are not sockets) every 10 s from `start`; 5 sockets each time."""
    return [
        Sample(start + 10 * i, process, pid, rss, fds + 5, sockets=5)
        for i, (rss, fds) in enumerate(values)
    ]


def test_growth_during_the_warm_up_is_not_judged_but_growth_after_it_is() -> None:
    warm = [(50, 10), (80, 20)]  # t = 0, 10: warm-up
    flat = samples("gateway", 1, 0, [*warm, (100, 30), (105, 31), (109, 32)])
    leak = samples("engine-0", 2, 0, [*warm, (100, 30), (105, 30), (111, 30)])
    fd_leak = samples("engine-1", 3, 0, [*warm, (100, 30), (100, 32), (100, 34)])
    verdicts = {v.process: v for v in flatness([*flat, *leak, *fd_leak], warmup_s=20)}
    assert verdicts["gateway"].rss == (100, 109)
    assert verdicts["gateway"].files == (30, 32)
    assert verdicts["gateway"].fds == (35, 37)
    assert verdicts["gateway"].within(0.10) is True
    assert verdicts["engine-0"].within(0.10) is False
    assert verdicts["engine-1"].within(0.10) is False


def test_a_restarted_process_is_judged_from_its_restart_and_a_short_life_is_not_judged() -> None:
    old = samples("engine-0", 1, 0, [(100, 30)] * 6)  # killed at t = 60
    new = samples("engine-0", 2, 60, [(40, 10), (60, 20), (100, 30), (100, 30), (104, 31)])
    gone = samples("gateway", 3, 0, [(100, 30), (100, 30), (200, 60), (100, 30)])
    by_pid = {v.pid: v for v in flatness([*old, *new, *gone], warmup_s=20)}
    assert by_pid[1].within(0.10) is True
    assert by_pid[2].judged_from == 80
    assert by_pid[2].samples == 3
    assert by_pid[2].within(0.10) is True
    assert by_pid[3].samples == 2  # t = 20, 30
    assert by_pid[3].within(0.10) is None


def test_sockets_that_follow_the_load_are_not_judged_under_load() -> None:
    busy = [Sample(t, "engine-0", 1, 100, fds=20 + n, sockets=5 + n) for t, n in
            ((30, 0), (40, 40), (50, 3), (60, 25))]  # fmt: skip
    (verdict,) = flatness(busy, warmup_s=0)
    assert verdict.fds == (20, 60)
    assert verdict.within(0.10) is True


def test_descriptors_left_open_after_the_load_are_found() -> None:
    before = [
        Sample(0, "gateway", 1, 100, 17, 4),
        Sample(0, "engine-0", 2, 50, 15, 3),
        Sample(0, "engine-1", 4, 50, 15, 3),
    ]
    after = [
        Sample(99, "gateway", 3, 100, 19, 6),  # a restarted one, judged as its role
        Sample(99, "engine-0", 2, 50, 17, 5, close_wait=1),
        Sample(99, "engine-1", 4, 50, 19, 3),  # 4 more files
    ]
    rows = idle_back(before, after, 0.10)
    assert rows[2] == "| gateway | 17 (4) | 19 (6, 0) | yes |"
    assert rows[3] == "| engine-0 | 15 (3) | 17 (5, 1) | **no** |"
    assert rows[4] == "| engine-1 | 15 (3) | 19 (3, 0) | **no** |"
    assert rows[-1].endswith("gateway 2, engines 2 together.")
