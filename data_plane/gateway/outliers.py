"""Latency outliers: which replicas of a model are so much slower than their peers that
they should leave rotation for a while (pure).

Each replica keeps a moving average of the time to first byte of the streams it served
(`LatencyAverage`, fed by the proxy). A replica is an outlier when its average is more than
`factor` times the median of its peers' and at least `min_gap_s` above it, judged only on
replicas with `min_samples` samples. At most `max_ejected_fraction` of a model's replicas
are out at once (ejected for any reason), and never the last available one: a fleet that
is slow everywhere is slow, not broken. Like error ejection (health.py), an outlier leaves
for a cool-down and comes back on probation; its average starts afresh then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True, slots=True)
class OutlierPolicy:
    factor: float = 3.0
    min_gap_s: float = 0.5
    min_samples: int = 20
    max_ejected_fraction: float = 0.34
    """0: never eject on latency."""


class LatencyAverage:
    """An exponentially weighted moving average (weight `alpha` for each new sample)."""

    __slots__ = ("alpha", "samples", "value")

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.value = 0.0
        self.samples = 0

    def observe(self, seconds: float) -> None:
        self.samples += 1
        if self.samples == 1:
            self.value = seconds
        else:
            self.value += self.alpha * (seconds - self.value)

    def reset(self) -> None:
        self.value = 0.0
        self.samples = 0


@dataclass(frozen=True, slots=True)
class ReplicaLatency:
    average_s: float
    samples: int
    available: bool
    """In rotation now (not ejected, not hung)."""


def latency_outliers(replicas: Sequence[ReplicaLatency], policy: OutlierPolicy) -> list[int]:
    """Indexes of the available replicas to eject now, slowest first."""
    total = len(replicas)
    if total < 2 or policy.max_ejected_fraction <= 0:
        return []
    available = sum(r.available for r in replicas)
    budget = min(
        math.floor(policy.max_ejected_fraction * total) - (total - available),
        available - 1,
    )
    if budget <= 0:
        return []
    judged = [i for i, r in enumerate(replicas) if r.available and r.samples >= policy.min_samples]
    slow: list[tuple[float, int]] = []
    for i in judged:
        peers = [replicas[j].average_s for j in judged if j != i]
        if not peers:
            continue
        typical = median(peers)
        mine = replicas[i].average_s
        if mine > policy.factor * typical and mine - typical >= policy.min_gap_s:
            slow.append((mine, i))
    slow.sort(reverse=True)
    return [i for _, i in slow[:budget]]
