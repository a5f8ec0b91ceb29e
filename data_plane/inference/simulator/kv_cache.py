"""A paged KV cache with a prefix cache, counted in blocks, as vLLM's V1 block pool keeps it.

- The cache holds `num_blocks` blocks of `block_size` tokens. A request holds the blocks of
  its tokens (prompt and output so far); it cannot run without them.
- A full block gets a hash chained over the tokens before it and including the adapter and
  the cache salt, computed as vLLM's `sha256_cbor` does (block_hashing.py). Two requests
  share a cached block only when everything before it, the adapter and the salt are the same.
- With `events` set (a `KvEventLog`), evictions and resets are recorded there, as vLLM's
  block pool records them for `--kv-events-config`; stores are recorded by the engine core,
  which knows the blocks' tokens.
- Freed blocks keep their hash and join the tail of a free queue; allocation takes from the
  head, evicting the hash of the least recently freed block (LRU). A cached block that a new
  request hits is taken back out of the free queue.
- `usage` is the fraction of blocks not in the free queue (what `vllm:kv_cache_usage_perc`
  reports).

Pure: no I/O, no clock. Not thread-safe; one engine owns one cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from data_plane.inference.simulator.block_hashing import BlockHash, block_hashes
from data_plane.inference.simulator.kv_events import KvEventLog

__all__ = ["BlockHash", "KVCache", "PrefixCacheStats", "block_hashes"]


@dataclass
class PrefixCacheStats:
    """Counters in tokens, as vLLM reports them (`vllm:prefix_cache_queries/hits`)."""

    queries: int = 0
    hits: int = 0


@dataclass
class KVCache:
    """Blocks, their owners and the prefix cache of one engine."""

    num_blocks: int
    block_size: int
    enable_prefix_caching: bool = True
    stats: PrefixCacheStats = field(default_factory=PrefixCacheStats)
    events: KvEventLog | None = None
    """Where evictions and resets are recorded (None: not recorded)."""

    def __post_init__(self) -> None:
        if self.num_blocks < 1 or self.block_size < 1:
            raise ValueError("num_blocks and block_size must be positive")
        # Per block: reference count and hash (None when not cached). Blocks from
        # `_fresh` on have never been used; they come first in the free queue, as in vLLM,
        # so they are handed out lazily and a large cache costs nothing to create.
        self._refs: list[int] = []
        self._hash: list[BlockHash | None] = []
        self._fresh = 0
        # Insertion-ordered dict as an O(1) LRU queue of freed block ids (head = evict first).
        self._free: dict[int, None] = {}
        self._cached: dict[BlockHash, int] = {}
        self._owned: dict[str, list[int]] = {}

    # -- observation -------------------------------------------------------------------

    @property
    def num_free_blocks(self) -> int:
        return self.num_blocks - self._fresh + len(self._free)

    @property
    def usage(self) -> float:
        """Fraction of blocks in use by requests (0.0 to 1.0)."""
        return 1.0 - self.num_free_blocks / self.num_blocks

    @property
    def num_cached_blocks(self) -> int:
        return len(self._cached)

    def blocks_of(self, request_id: str) -> int:
        return len(self._owned.get(request_id, ()))

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # -- prefix cache --------------------------------------------------------------------

    def lookup(self, hashes: Sequence[BlockHash], num_prompt_tokens: int) -> list[int]:
        """The cached blocks that hold the longest cached prefix of a new request's prompt.

        At least the prompt's last token is always computed (it yields the first output
        token), so a prompt of exactly n full blocks can hit at most n - 1 of them. Counts
        the query and the hit in `stats` (tokens).
        """
        hits: list[int] = []
        if self.enable_prefix_caching:
            max_blocks = (num_prompt_tokens - 1) // self.block_size
            for block_hash in hashes[:max_blocks]:
                block_id = self._cached.get(block_hash)
                if block_id is None:
                    break
                hits.append(block_id)
        return hits

    def record_query(self, num_tokens: int, num_hit_tokens: int) -> None:
        """Count one scheduled lookup in `stats` (tokens queried, tokens found)."""
        self.stats.queries += num_tokens
        self.stats.hits += num_hit_tokens

    def cache_blocks(self, request_id: str, hashes: Sequence[BlockHash], start: int) -> list[int]:
        """Record the hashes of the request's full blocks `start .. start+len(hashes)-1`;
        the offsets (into `hashes`) of those that newly entered the cache."""
        new: list[int] = []
        if not self.enable_prefix_caching:
            return new
        owned = self._owned[request_id]
        for offset, block_hash in enumerate(hashes):
            block_id = owned[start + offset]
            if self._hash[block_id] is not None:
                continue  # a hit block, already cached under this very hash
            if block_hash in self._cached:
                continue  # computed twice concurrently: keep the first copy cached
            self._hash[block_id] = block_hash
            self._cached[block_hash] = block_id
            new.append(offset)
        return new

    # -- allocation ----------------------------------------------------------------------

    def can_allocate(self, request_id: str, num_tokens: int, hits: Sequence[int] = ()) -> bool:
        """Whether `allocate` would succeed for a request to hold `num_tokens` tokens."""
        owned = len(self._owned.get(request_id, ()))
        missing = self.blocks_needed(num_tokens) - owned - len(hits)
        hits_in_free = sum(1 for block_id in hits if self._refs[block_id] == 0)
        return missing <= self.num_free_blocks - hits_in_free

    def allocate(self, request_id: str, num_tokens: int, hits: Sequence[int] = ()) -> bool:
        """Grow the request's blocks to hold `num_tokens` tokens, first taking the prefix-hit
        blocks `hits` (only on its first allocation). False, and nothing changed, if the
        free blocks do not suffice."""
        if not self.can_allocate(request_id, num_tokens, hits):
            return False
        owned = self._owned.setdefault(request_id, [])
        refs, hashes = self._refs, self._hash
        for block_id in hits:
            if refs[block_id] == 0:
                del self._free[block_id]
            refs[block_id] += 1
            owned.append(block_id)
        for _ in range(self.blocks_needed(num_tokens) - len(owned)):
            if self._fresh < self.num_blocks:
                block_id = self._fresh
                self._fresh += 1
                refs.append(1)
                hashes.append(None)
                owned.append(block_id)
                continue
            block_id = next(iter(self._free))
            del self._free[block_id]
            old = hashes[block_id]
            if old is not None:
                del self._cached[old]  # evict the least recently used
                hashes[block_id] = None
                if self.events is not None:
                    self.events.removed(old)
            refs[block_id] = 1
            owned.append(block_id)
        return True

    def free(self, request_id: str) -> None:
        """Release the request's blocks. Cached ones stay findable until evicted; the tail of
        the request goes to the queue first so that it is evicted before its prefix."""
        refs = self._refs
        for block_id in reversed(self._owned.pop(request_id, [])):
            refs[block_id] -= 1
            if refs[block_id] == 0:
                self._free[block_id] = None

    def reset_prefix_cache(self) -> bool:
        """Forget every cached hash (vLLM's /reset_prefix_cache); False while blocks are used."""
        if self.num_free_blocks != self.num_blocks:
            return False
        self._hash = [None] * len(self._hash)
        self._cached.clear()
        if self.events is not None:
            self.events.cleared()
        return True
