"""GPU LoRA slots: resident adapters, LRU eviction, swap counting."""

from __future__ import annotations

import pytest

from data_plane.inference.simulator.lora_slots import LoraSlots


def test_swaps_in_only_what_is_not_resident() -> None:
    slots = LoraSlots(max_loras=2)
    assert slots.activate(["a"]) == 1
    assert slots.activate(["a"]) == 0
    assert slots.activate(["a", "b"]) == 1
    assert slots.resident == ["a", "b"]
    assert slots.swaps == 2


def test_evicts_the_least_recently_used_adapter_not_needed_now() -> None:
    slots = LoraSlots(max_loras=2)
    slots.activate(["a"])
    slots.activate(["b"])
    slots.activate(["a"])  # b is now the least recently used
    assert slots.activate(["c"]) == 1
    assert sorted(slots.resident) == ["a", "c"]


def test_never_evicts_an_adapter_the_step_needs() -> None:
    slots = LoraSlots(max_loras=2)
    slots.activate(["a", "b"])
    assert slots.activate(["b", "c"]) == 1
    assert sorted(slots.resident) == ["b", "c"]


def test_refuses_more_adapters_than_slots_in_one_step() -> None:
    slots = LoraSlots(max_loras=1)
    with pytest.raises(ValueError, match="max_loras"):
        slots.activate(["a", "b"])


def test_unloaded_adapter_leaves_its_slot() -> None:
    slots = LoraSlots(max_loras=1)
    slots.activate(["a"])
    slots.evict("a")
    slots.evict("never-loaded")
    assert slots.resident == []
    assert slots.activate(["a"]) == 1


def test_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LoraSlots(max_loras=0)
