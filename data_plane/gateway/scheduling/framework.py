"""The plugin interfaces and the profile that runs them (pure: no I/O, no clocks).

One request's selection among a model's routable replicas is a straight line:

    filters (keep or drop each candidate) -> scorers (one score in [0, 1] each, higher is
    better, combined by the profile's weights) -> picker (one index) -> reason (a label)

A profile is one such line with a name; each Model names its profile (`routingPolicy`).
Plugins are built once per Model and called per request, so they keep no per-request state
beyond what a picker needs to take turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from data_plane.gateway.routing.policy import ReplicaLoad, RouteRequest


class Filter(Protocol):
    name: str

    def keep(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> Sequence[bool]:
        """One flag per candidate, same order: True keeps it."""
        ...


class Scorer(Protocol):
    name: str

    def score(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> Sequence[float]:
        """One score in [0, 1] per candidate, same order; higher is better."""
        ...


class Picker(Protocol):
    name: str

    def pick(self, scores: Sequence[float], kept: Sequence[int]) -> int:
        """One of `kept` (indexes into `scores`, non-empty)."""
        ...


Reason = Callable[[RouteRequest, Sequence[float]], str]
"""The decision's label from the request and the winner's score per scorer (profile order);
a bounded set of values (it labels the routing metric)."""


@dataclass(frozen=True, slots=True)
class Weighted:
    scorer: Scorer
    weight: float


class Profile:
    """Filters, weighted scorers, a picker and a reason rule, under a policy name.

    Scorers see every candidate the profile was given (a scorer's view of the fleet stays
    stable, e.g. the prefix ring), the picker chooses among those every filter kept. A
    filter that would drop every candidate is passed over (its rule cannot be met now).
    """

    __slots__ = ("alone", "filters", "name", "picker", "reason", "scorers")

    def __init__(
        self,
        name: str,
        *,
        filters: Sequence[Filter] = (),
        scorers: Sequence[Weighted] = (),
        picker: Picker,
        reason: Reason,
        alone: str | None = None,
    ) -> None:
        self.name = name
        self.filters = tuple(filters)
        self.scorers = tuple(scorers)
        self.picker = picker
        self.reason = reason
        self.alone = alone
        """The reason when there is one candidate, which then skips the pipeline; None:
        the pipeline runs (the reason needs the scores)."""

    def choose(self, candidates: Sequence[ReplicaLoad], request: RouteRequest) -> tuple[int, str]:
        """The index in `candidates` to use and the reason (the `Policy` interface).

        Precondition: `candidates` is non-empty and holds only routable replicas.
        """
        n = len(candidates)
        if n == 1 and self.alone is not None:
            return 0, self.alone
        kept: Sequence[int] = range(n)
        for f in self.filters:
            flags = f.keep(candidates, request)
            survivors = [i for i in kept if flags[i]]
            if survivors:
                kept = survivors
        if not self.scorers:
            index = self.picker.pick((), kept)
            return index, self.reason(request, ())
        per_scorer = [w.scorer.score(candidates, request) for w in self.scorers]
        if len(per_scorer) == 1:
            total: Sequence[float] = per_scorer[0]
        elif len(per_scorer) == 2:  # every built-in profile that combines: one pass
            (w0, w1), (s0, s1) = (w.weight for w in self.scorers), per_scorer
            total = [w0 * a + w1 * b for a, b in zip(s0, s1, strict=True)]
        else:
            total = [0.0] * n  # only the kept candidates' totals matter to the picker
            for w, scores in zip(self.scorers, per_scorer, strict=True):
                weight = w.weight
                for i in kept:
                    total[i] += weight * scores[i]
        index = self.picker.pick(total, kept)
        return index, self.reason(request, tuple(s[index] for s in per_scorer))
