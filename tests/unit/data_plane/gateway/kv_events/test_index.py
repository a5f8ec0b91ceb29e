"""The block index: stored, removed, cleared, gaps, orphans, the memory bound."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from data_plane.gateway.kv_events.block_keys import prompt_keys
from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.wire import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    KvEvent,
)

BS = 4
PROMPT = list(range(100, 100 + 4 * BS))  # four blocks
KEYS = prompt_keys(PROMPT, BS, adapter=None, salt=None)


def stored(first: int, last: int, parent: bool = True) -> BlockStored:
    """Blocks first..last of PROMPT, engine hashes b'h<i>'."""
    return BlockStored(
        block_hashes=[f"h{i}".encode() for i in range(first, last + 1)],
        parent_block_hash=f"h{first - 1}".encode() if first > 0 and parent else None,
        token_ids=PROMPT[first * BS : (last + 1) * BS],
        block_size=BS,
    )


def removed(*blocks: int) -> BlockRemoved:
    return BlockRemoved(block_hashes=[f"h{i}".encode() for i in blocks])


@dataclass(frozen=True)
class Case:
    batches: Sequence[tuple[int, Sequence[KvEvent]]]
    held: int
    """How many of PROMPT's leading blocks replica `a` is known to hold afterwards."""


def _leading(index: KvBlockIndex, replica: str) -> int:
    n = 0
    for key in KEYS:
        holders = index.holders(key)
        if not holders or replica not in holders:
            break
        n += 1
    return n


CASES = [
    pytest.param(Case([(0, [stored(0, 3)])], 4), id="stored-in-one-event"),
    pytest.param(Case([(0, [stored(0, 1)]), (1, [stored(2, 3)])], 4), id="stored-chained"),
    pytest.param(Case([(0, [stored(0, 3), removed(2)])], 2), id="removed-cuts-the-prefix"),
    pytest.param(Case([(0, [stored(0, 3), removed(0)])], 0), id="removed-first-block"),
    pytest.param(Case([(0, [stored(0, 3)]), (1, [AllBlocksCleared()])], 0), id="cleared"),
    pytest.param(
        Case([(0, [stored(0, 3)]), (1, [AllBlocksCleared()]), (2, [stored(0, 0)])], 1),
        id="stored-after-cleared",
    ),
    pytest.param(Case([(0, [stored(2, 3)])], 0), id="orphan-unknown-parent"),
    pytest.param(Case([(0, [stored(0, 1)]), (2, [stored(2, 3)])], 0), id="gap-forgets"),
    pytest.param(Case([(0, [stored(0, 1)]), (2, [stored(0, 3)])], 4), id="gap-then-fresh-store"),
    pytest.param(Case([(5, [stored(0, 3)]), (0, [])], 0), id="restart-seq-goes-back"),
    pytest.param(Case([(7, [stored(0, 3)])], 4), id="first-batch-any-seq"),
    pytest.param(Case([(0, [removed(9)])], 0), id="removing-unknown-is-harmless"),
]


@pytest.mark.parametrize("case", CASES)
def test_the_index_follows_the_events(case: Case) -> None:
    index = KvBlockIndex()
    for seq, events in case.batches:
        index.apply("a", seq, events)
    assert _leading(index, "a") == case.held


def test_replicas_are_independent_and_forget_drops_one() -> None:
    index = KvBlockIndex()
    index.apply("a", 0, [stored(0, 3)])
    index.apply("b", 0, [stored(0, 1)])
    assert index.holders(KEYS[0]) == {"a": 1, "b": 1}
    assert index.holders(KEYS[3]) == {"a": 1}
    index.apply("b", 1, [AllBlocksCleared()])
    assert index.holders(KEYS[0]) == {"a": 1}
    index.forget("a")
    assert index.holders(KEYS[0]) is None
    assert index.replicas() == ["b"]


def test_memory_is_bounded_per_replica_oldest_first() -> None:
    index = KvBlockIndex(max_blocks_per_replica=3)
    index.apply("a", 0, [stored(0, 3)])
    assert index.num_blocks("a") == 3
    assert index.stats.trimmed == 1
    assert index.holders(KEYS[0]) is None  # the oldest went first
    assert index.holders(KEYS[3]) == {"a": 1}


def test_adapter_and_salt_keys_match_the_request_side() -> None:
    index = KvBlockIndex()
    event = BlockStored(
        block_hashes=[b"x0", b"x1"],
        parent_block_hash=None,
        token_ids=PROMPT[: 2 * BS],
        block_size=BS,
        lora_name="sql",
        extra_keys=[["sql", "tenant-a"], ["sql"]],
    )
    index.apply("a", 0, [event])
    keyed = prompt_keys(PROMPT, BS, adapter="sql", salt="tenant-a")
    assert index.holders(keyed[0]) == {"a": 1}
    assert index.holders(keyed[1]) == {"a": 1}
    assert index.holders(prompt_keys(PROMPT, BS, adapter="sql", salt=None)[0]) is None
    assert index.holders(KEYS[0]) is None  # no adapter: another block
    assert index.block_size("a") == BS


def test_the_same_block_under_two_engine_hashes_is_held_until_both_go() -> None:
    index = KvBlockIndex()
    twin = BlockStored(
        block_hashes=[b"other"], parent_block_hash=None, token_ids=PROMPT[:BS], block_size=BS
    )
    index.apply("a", 0, [stored(0, 0), twin])
    assert index.holders(KEYS[0]) == {"a": 2}
    index.apply("a", 1, [removed(0)])
    assert index.holders(KEYS[0]) == {"a": 1}
    index.apply("a", 2, [BlockRemoved(block_hashes=[b"other"])])
    assert index.holders(KEYS[0]) is None
