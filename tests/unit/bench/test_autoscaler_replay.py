"""The trace-replay benchmark's simulation on small synthetic traces (not a benchmark)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.autoscaler_replay import (
    HoistPolicy,
    HpaPolicy,
    Policy,
    Request,
    SchedulePolicy,
    ServiceModel,
    best_schedule,
    load_trace,
    main,
    simulate,
    simulate_engines,
)
from control_plane.autoscaler.algorithm import ScalingPolicy
from data_plane.inference.simulator.profiles import builtin_profiles

MODEL = ServiceModel(slots=2, prefill_tokens_per_s=1000, tpot_s=0.01, cold_start_s=20)


def burst_trace() -> list[Request]:
    """1 request/s for 5 minutes, then 8/s for 5 minutes, then 1/s again."""
    out: list[Request] = []
    t = 0.0
    for rate, seconds in ((1, 300), (8, 300), (1, 600)):
        for _ in range(rate * seconds):
            out.append(Request(t, 500, 100))
            t += 1 / rate
    return out


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(lambda: HpaPolicy(target=1.5, min_replicas=1, max_replicas=30), id="hpa"),
        pytest.param(
            lambda: HoistPolicy(
                ScalingPolicy(min_replicas=1, max_replicas=30, target_concurrency=1.5)
            ),
            id="hoist",
        ),
    ],
)
def test_both_policies_follow_a_burst_and_serve_everything(policy: Callable[[], Policy]) -> None:
    requests = burst_trace()
    result = simulate(requests, policy(), MODEL, start=2, warmup=0)
    assert len(result.ttfts) == len(requests)
    assert result.peak >= 6, "the burst needs several times the starting fleet"
    assert result.changes >= 2, "up for the burst and down after it"
    assert 0 < result.attainment(2.0) <= 1


def test_trace_is_read_relative_to_its_first_request(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.6805900,10,0\n"
    )
    assert load_trace(path, speedup=2) == [Request(0.0, 374, 44), Request(2.0, 10, 1)]


def test_a_missing_trace_is_reported_clearly(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="trace not found"):
        main(["--trace", str(tmp_path / "absent.csv")])


def test_engine_fleets_serve_a_burst_with_both_policies() -> None:
    """The engine simulator's core as the replica: every request gets its first token."""
    profile = builtin_profiles()["llama-3.1-8b-a100-40gb"]
    requests: list[Request] = []
    t = 0.0
    for rate, seconds in ((2, 60), (40, 60), (2, 180)):
        for _ in range(rate * seconds):
            requests.append(Request(t, 800, 60))
            t += 1 / rate
    makers: list[Callable[[], Policy]] = [
        lambda: HpaPolicy(target=16, min_replicas=1, max_replicas=20),
        lambda: HoistPolicy(ScalingPolicy(min_replicas=1, max_replicas=20, target_concurrency=16)),
    ]
    for make in makers:
        result = simulate_engines(requests, make(), profile, start=1, warmup=0, cold_start_s=10)
        assert len(result.ttfts) == len(requests)
        assert result.peak >= 2, "the burst needs more than one engine"


def test_the_oracle_finds_the_cheapest_one_change_schedule_that_serves_as_well() -> None:
    """A flat load on an over-sized start fleet: the best schedule shrinks the fleet once,
    serves at least as well as the HPA, costs no more, and no smaller fleet would do."""
    requests = [Request(t * 0.5, 500, 100) for t in range(1200)]  # 3 busy slots
    hpa = simulate(requests, HpaPolicy(1.5, 1, 8), MODEL, start=6, warmup=60)
    found = best_schedule(requests, MODEL, start=6, warmup=60, slo=2.0, step_s=120, hpa=hpa)
    assert found is not None
    policy, result = found
    assert result.changes <= 1 and policy.after < 6
    assert result.attainment(2.0) >= hpa.attainment(2.0)
    assert result.replica_seconds <= hpa.replica_seconds
    smaller = simulate(requests, SchedulePolicy(6, 60, policy.after - 1), MODEL, 6, 60)
    assert policy.after == 1 or smaller.attainment(2.0) < hpa.attainment(2.0)


def test_the_report_states_the_oracle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--oracle` adds the cheapest one-change schedule, as a ratio to the HPA's cost."""
    t0, at = datetime(2023, 11, 16, 18, 0, 0), 0.0
    lines = []
    for rate, seconds in ((1, 120), (4, 120), (1, 240)):
        for _ in range(rate * seconds):
            lines.append(f"{t0 + timedelta(seconds=at):%Y-%m-%d %H:%M:%S.%f},500,100\n")
            at += 1 / rate
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(lines))
    main(["--trace", str(path), "--speedup", "1", "--engine-speedup", "--oracle", "--target", "4"])
    _, oracle = capsys.readouterr().out.split("With perfect foresight (`--oracle`)")
    line = next(x for x in oracle.splitlines() if x.startswith("- 1x: "))
    assert re.match(
        r"- 1x: (none reaches|\d+ replicas? from (the end of the warm-up|\d+ min \(1x time\)): "
        r"\d+\.\d\dx the HPA's replica-seconds \([01] changes? vs the HPA's \d+\)\.)",
        line,
    ), line
