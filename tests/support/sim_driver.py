"""Drive an EngineCore in virtual time (no clock, no I/O)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from data_plane.inference.simulator.engine_core import EngineCore, SimRequest, StepResult

_ids = itertools.count()


def request(
    prompt: Sequence[int],
    outputs: int,
    *,
    arrival: float = 0.0,
    adapter: str | None = None,
    salt: str | None = None,
) -> SimRequest:
    return SimRequest(
        request_id=f"r{next(_ids)}",
        prompt_token_ids=list(prompt),
        output_token_ids=[7] * outputs,
        arrival_time=arrival,
        adapter=adapter,
        cache_salt=salt,
    )


def run(
    core: EngineCore, now: float = 0.0, max_steps: int = 100_000
) -> tuple[float, list[StepResult]]:
    """Step until the core has no work; return the end time and the steps."""
    steps: list[StepResult] = []
    for _ in range(max_steps):
        if not core.has_work:
            return now, steps
        result = core.step(now)
        assert not result.idle, "work left but nothing schedulable"
        steps.append(result)
        now = result.end
    raise AssertionError("did not finish")


def ttft(r: SimRequest) -> float:
    assert r.first_token_time is not None
    return r.first_token_time - r.arrival_time
