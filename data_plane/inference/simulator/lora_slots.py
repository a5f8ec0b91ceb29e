"""The GPU's LoRA slots: at most `max_loras` adapters resident, least recently used evicted.

An adapter that a step needs and that is not resident is swapped in (it costs
`LatencyProfile.lora_swap_in_s`), taking the slot of the least recently used adapter that
the step does not need. The scheduler guarantees that one step never needs more than
`max_loras` distinct adapters. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable


class LoraSlots:
    """Which adapters are resident in GPU slots, in LRU order."""

    def __init__(self, max_loras: int) -> None:
        if max_loras < 1:
            raise ValueError("max_loras must be at least 1")
        self.max_loras = max_loras
        self._resident: dict[str, None] = {}  # insertion order = LRU order, head is oldest
        self.swaps = 0

    @property
    def resident(self) -> list[str]:
        return list(self._resident)

    def activate(self, adapters: Iterable[str]) -> int:
        """Make `adapters` (at most max_loras distinct) resident; return how many were
        swapped in."""
        needed = list(dict.fromkeys(adapters))
        if len(needed) > self.max_loras:
            raise ValueError(f"{len(needed)} adapters in one step exceed max_loras")
        swapped = 0
        for name in needed:
            if name in self._resident:
                del self._resident[name]  # re-insert below: most recently used
            else:
                swapped += 1
                if len(self._resident) >= self.max_loras:
                    victim = next(n for n in self._resident if n not in needed)
                    del self._resident[victim]
            self._resident[name] = None
        self.swaps += swapped
        return swapped

    def evict(self, name: str) -> None:
        """Forget an adapter (it was unloaded)."""
        self._resident.pop(name, None)
