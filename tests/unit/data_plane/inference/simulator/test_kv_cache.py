"""The paged KV cache and its prefix cache: hashing, hits, allocation, LRU eviction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.inference.simulator.kv_cache import KVCache, block_hashes

BS = 4


def test_hashes_chain_over_full_blocks_only() -> None:
    tokens = list(range(10))
    hashes = block_hashes(tokens, BS, adapter=None, salt=None)
    assert len(hashes) == 2  # 10 tokens = 2 full blocks + 2 tokens
    # The second block's hash depends on the first block's tokens.
    other = block_hashes([99, *tokens[1:]], BS, adapter=None, salt=None)
    assert other[0] != hashes[0]
    assert other[1] != hashes[1]
    # Resuming from block 1 with its parent gives the same hash.
    assert block_hashes(tokens, BS, adapter=None, salt=None, start=1, parent=hashes[0]) == [
        hashes[1]
    ]


@pytest.mark.parametrize(
    ("adapter", "salt"),
    [
        pytest.param("sql-lora", None, id="adapter"),
        pytest.param(None, "tenant-a", id="cache-salt"),
        pytest.param("sql-lora", "tenant-a", id="both"),
    ],
)
def test_adapter_and_salt_change_every_hash(adapter: str | None, salt: str | None) -> None:
    tokens = list(range(12))
    base = block_hashes(tokens, BS, adapter=None, salt=None)
    keyed = block_hashes(tokens, BS, adapter=adapter, salt=salt)
    assert not set(base) & set(keyed)


def _cache_prompt(cache: KVCache, request_id: str, tokens: list[int], adapter: str | None) -> None:
    hashes = block_hashes(tokens, BS, adapter=adapter, salt=None)
    assert cache.allocate(request_id, len(tokens))
    cache.cache_blocks(request_id, hashes, 0)


def test_lookup_finds_the_cached_prefix_but_always_leaves_the_last_token() -> None:
    cache = KVCache(num_blocks=16, block_size=BS)
    tokens = list(range(12))  # exactly 3 blocks
    _cache_prompt(cache, "a", tokens, None)
    cache.free("a")
    hashes = block_hashes(tokens, BS, adapter=None, salt=None)
    assert len(cache.lookup(hashes, len(tokens))) == 2  # the last token is recomputed
    longer = [*tokens, 50, 51]
    longer_hashes = block_hashes(longer, BS, adapter=None, salt=None)
    assert len(cache.lookup(longer_hashes, len(longer))) == 3
    other_adapter = block_hashes(longer, BS, adapter="x", salt=None)
    assert cache.lookup(other_adapter, len(longer)) == []


def test_allocation_fails_without_side_effects_when_blocks_run_out() -> None:
    cache = KVCache(num_blocks=4, block_size=BS)
    assert cache.allocate("a", 3 * BS)
    assert not cache.allocate("b", 2 * BS)
    assert cache.blocks_of("b") == 0
    assert cache.num_free_blocks == 1
    assert cache.usage == pytest.approx(0.75)
    assert cache.allocate("b", BS)
    assert cache.usage == 1.0
    cache.free("a")
    cache.free("b")
    assert cache.usage == 0.0


def test_growing_a_request_takes_only_the_missing_blocks() -> None:
    cache = KVCache(num_blocks=8, block_size=BS)
    assert cache.allocate("a", 5)
    assert cache.blocks_of("a") == 2
    assert cache.allocate("a", 8)
    assert cache.blocks_of("a") == 2
    assert cache.allocate("a", 9)
    assert cache.blocks_of("a") == 3


def test_hit_blocks_are_shared_not_copied() -> None:
    cache = KVCache(num_blocks=8, block_size=BS)
    tokens = list(range(8))
    _cache_prompt(cache, "a", tokens, None)
    hashes = block_hashes([*tokens, 9], BS, adapter=None, salt=None)
    hits = cache.lookup(hashes, 9)
    assert len(hits) == 2
    free_before = cache.num_free_blocks
    assert cache.allocate("b", 9, hits)
    assert cache.num_free_blocks == free_before - 1  # only the third block is new
    cache.free("a")
    assert cache.num_free_blocks == free_before - 1  # still held by b


def test_least_recently_freed_prefix_is_evicted_first() -> None:
    cache = KVCache(num_blocks=4, block_size=BS)
    old = list(range(100, 108))
    new = list(range(200, 208))
    _cache_prompt(cache, "old", old, None)
    cache.free("old")
    _cache_prompt(cache, "new", new, None)
    cache.free("new")
    assert cache.num_cached_blocks == 4
    assert cache.allocate("x", 2 * BS)  # needs two blocks: evicts the older prompt
    cache.free("x")
    old_hashes = block_hashes([*old, 1], BS, adapter=None, salt=None)
    new_hashes = block_hashes([*new, 1], BS, adapter=None, salt=None)
    assert cache.lookup(old_hashes, 9) == []
    assert len(cache.lookup(new_hashes, 9)) == 2


def test_a_hit_refreshes_recency() -> None:
    cache = KVCache(num_blocks=4, block_size=BS)
    first = list(range(100, 108))
    second = list(range(200, 208))
    _cache_prompt(cache, "first", first, None)
    cache.free("first")
    _cache_prompt(cache, "second", second, None)
    cache.free("second")
    hits = cache.lookup(block_hashes([*first, 1], BS, adapter=None, salt=None), 9)
    assert cache.allocate("again", 9, hits)  # takes 1 new block: evicts from `second`
    cache.free("again")
    assert len(cache.lookup(block_hashes([*first, 1], BS, adapter=None, salt=None), 9)) == 2


def test_disabled_prefix_caching_never_hits() -> None:
    cache = KVCache(num_blocks=8, block_size=BS, enable_prefix_caching=False)
    tokens = list(range(9))
    _cache_prompt(cache, "a", tokens, None)
    cache.free("a")
    assert cache.lookup(block_hashes(tokens, BS, adapter=None, salt=None), 9) == []


def test_reset_prefix_cache_only_when_idle() -> None:
    cache = KVCache(num_blocks=8, block_size=BS)
    tokens = list(range(9))
    _cache_prompt(cache, "a", tokens, None)
    assert not cache.reset_prefix_cache()
    cache.free("a")
    assert cache.reset_prefix_cache()
    assert cache.num_cached_blocks == 0


def test_rejects_an_empty_cache() -> None:
    with pytest.raises(ValueError, match="positive"):
        KVCache(num_blocks=0, block_size=BS)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "free"]),
        st.integers(0, 5),  # request
        st.integers(1, 40),  # tokens
        st.integers(0, 3),  # which prompt family
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_block_accounting_invariants(ops: list[tuple[str, int, int, int]]) -> None:
    """Whatever happens, blocks are either free or owned, and ownership matches sizes."""
    cache = KVCache(num_blocks=12, block_size=BS)
    sizes: dict[str, int] = {}
    for op, rid, tokens, family in ops:
        request_id = f"r{rid}"
        if op == "free":
            cache.free(request_id)
            sizes.pop(request_id, None)
            continue
        prompt = [family * 1000 + i for i in range(tokens)]
        hashes = block_hashes(prompt, BS, adapter=None, salt=None)
        hits = [] if request_id in sizes else cache.lookup(hashes, tokens)
        want = max(tokens, sizes.get(request_id, 0))
        if cache.allocate(request_id, want, hits):
            sizes[request_id] = want
            cache.cache_blocks(request_id, hashes[: cache.blocks_of(request_id)], 0)
        owned = {r: cache.blocks_of(r) for r in sizes}
        for r, size in sizes.items():
            assert owned[r] == cache.blocks_needed(size)
        assert 0 <= cache.num_free_blocks <= cache.num_blocks
        assert 0.0 <= cache.usage <= 1.0
    for request_id in list(sizes):
        cache.free(request_id)
    assert cache.num_free_blocks == cache.num_blocks
