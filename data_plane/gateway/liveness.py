"""When is an engine too slow to wait for: the gateway's timeouts, derived from the engine (pure).

The engine's own timing comes from its Prometheus histograms (read by the load poll,
engine_metrics.py): the means of time to first token, inter-token latency and end-to-end
latency over the interval between two scrapes (`recent_timing`). From them and the
engine's queue (`waiting`, `running`):

- `first_byte_timeout`: how long one attempt may wait for its first byte before the gateway
  gives up on that replica and tries another. Expected wait = the recent TTFT (vLLM's TTFT
  includes queueing) + the queue ahead of it drained at the engine's throughput (Little's
  law: `running / e2e` requests finish per second, so `waiting * e2e / running`); for a
  non-streaming request, plus `max_tokens` x the inter-token latency (its first byte is its
  whole answer). The timeout is `slack` x that, within [floor, ceiling]. Without timing
  (no scrape yet, no samples) or, non-streaming, without `max_tokens`: the ceiling.
- `stall_timeout`: the longest silence allowed between two chunks of a stream:
  `stall_factor` x the recent inter-token latency, within [stall floor, ceiling].
- `hang_detection_bound_s`: the longest a hung replica (one that stops answering anything)
  goes unnoticed by the active probe (health.py counts the failures).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineCounters:
    """Cumulative `_sum` / `_count` of the engine's latency histograms (one scrape)."""

    ttft_sum: float = 0.0
    ttft_count: float = 0.0
    itl_sum: float = 0.0
    itl_count: float = 0.0
    e2e_sum: float = 0.0
    e2e_count: float = 0.0


@dataclass(frozen=True, slots=True)
class EngineTiming:
    """Recent mean latencies of one engine, in seconds; None: not known yet."""

    ttft_s: float | None = None
    itl_s: float | None = None
    e2e_s: float | None = None


def _mean(
    prev_sum: float, prev_count: float, cur_sum: float, cur_count: float, last: float | None
) -> float | None:
    if cur_count < prev_count or cur_sum < prev_sum:  # counters reset: the engine restarted
        prev_sum = prev_count = 0.0
    count = cur_count - prev_count
    if count <= 0:
        return last  # nothing finished since: keep what we knew
    return max(0.0, (cur_sum - prev_sum) / count)


def recent_timing(
    prev: EngineCounters | None, cur: EngineCounters, last: EngineTiming
) -> EngineTiming:
    """Mean latencies over the samples between `prev` and `cur` (all of `cur`'s when there
    is no `prev`); a series with no new sample keeps its value from `last`."""
    p = prev or EngineCounters()
    return EngineTiming(
        ttft_s=_mean(p.ttft_sum, p.ttft_count, cur.ttft_sum, cur.ttft_count, last.ttft_s),
        itl_s=_mean(p.itl_sum, p.itl_count, cur.itl_sum, cur.itl_count, last.itl_s),
        e2e_s=_mean(p.e2e_sum, p.e2e_count, cur.e2e_sum, cur.e2e_count, last.e2e_s),
    )


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    first_byte_floor_s: float = 5.0
    first_byte_ceiling_s: float = 300.0
    slack: float = 4.0
    """Multiple of the expected wait before an attempt is given up."""
    stall_floor_s: float = 5.0
    stall_factor: float = 50.0
    """Multiple of the inter-token latency a stream may stay silent."""
    stall_ceiling_s: float = 60.0


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def first_byte_timeout(
    policy: TimeoutPolicy,
    timing: EngineTiming,
    *,
    waiting: int,
    running: int,
    stream: bool,
    max_tokens: int | None,
) -> float:
    """Seconds one attempt may wait for its first byte from this engine."""
    if timing.ttft_s is None:
        return policy.first_byte_ceiling_s
    expected = timing.ttft_s
    if waiting > 0 and timing.e2e_s is not None:
        expected += waiting * timing.e2e_s / max(1, running)
    if not stream:
        if max_tokens is None or timing.itl_s is None:
            return policy.first_byte_ceiling_s
        expected += max_tokens * timing.itl_s
    low = min(policy.first_byte_floor_s, policy.first_byte_ceiling_s)
    return _clamp(policy.slack * expected, low, policy.first_byte_ceiling_s)


def stall_timeout(policy: TimeoutPolicy, itl_s: float | None) -> float:
    """Seconds a started stream may stay silent before it counts as stalled."""
    low = min(policy.stall_floor_s, policy.stall_ceiling_s)
    if itl_s is None:
        return low
    return _clamp(policy.stall_factor * itl_s, low, policy.stall_ceiling_s)


@dataclass(frozen=True, slots=True)
class ProbePolicy:
    interval_s: float = 1.0
    """Pause between two probe rounds."""
    timeout_s: float = 1.0
    """A probe not answered within this fails."""
    failures_to_eject: int = 2
    """Failed probes in a row that mark a replica hung."""


def hang_detection_bound_s(probe: ProbePolicy) -> float:
    """Longest time from a replica hanging to its ejection by the probe.

    A replica that answered a request in the last interval is not probed (it is evidently
    alive), so the first failing probe may start up to two rounds after the hang; each
    round lasts at most `timeout_s` plus the `interval_s` pause."""
    return (probe.failures_to_eject + 1) * (probe.interval_s + probe.timeout_s)
