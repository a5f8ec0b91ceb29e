"""A stand-in replica for the plugin tables: plain fields, the `ReplicaState` protocol."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class R:
    name: str
    in_flight: int = 0
    waiting: int = 0
    running_adapters: frozenset[str] | None = None
    max_loras: int = 4
    ready: bool = True
    adapters: frozenset[str] = field(default_factory=frozenset)
    ejected_until: float = float("-inf")
    cap_left: int | None = None

    def available(self, now: float) -> bool:
        return now >= self.ejected_until


def loads(*pairs: tuple[int, int]) -> list[R]:
    """Replicas r0, r1, ... with (in flight, waiting)."""
    return [R(f"r{i}", a, b) for i, (a, b) in enumerate(pairs)]
