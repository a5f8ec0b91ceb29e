"""Fleets of real simulator processes (one engine each, so one can be stopped or killed)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.simulator import SimProcess, start_sim_process

# A flat engine at 80 tokens/s per stream (50 ms steps at 4x), room for hundreds of streams.
SIM_ARGS = ["--profile", "constant-20tps", "--time-scale", "4", "--served-model-name", "sim"]


@pytest.fixture
def sim_processes(tmp_path: Path) -> Iterator[list[SimProcess]]:
    """Three simulator processes, one engine each; stopped (and continued first) after."""
    with contextlib.ExitStack() as stack:
        sims: list[SimProcess] = []
        for i in range(3):
            sim = start_sim_process(SIM_ARGS, log_path=tmp_path / f"sim-{i}.log")
            stack.callback(sim.stop)
            stack.callback(
                lambda s=sim: s.process.poll() is None and s.process.send_signal(signal.SIGCONT)
            )
            sims.append(sim)
        yield sims
