"""Which replica holds which prompt blocks, followed from the engines' KV-cache events.

Per replica the index maps each engine block hash it was told about to the gateway's key
for that block (block_keys.py), and per key it knows the replicas that hold it:

- `BlockStored`: the blocks chain from `parent_block_hash` (None: a prompt's first block).
  A parent the index does not know (stored before the gateway subscribed, or forgotten) makes
  the blocks unreachable from a prompt's start, so they are skipped.
- `BlockRemoved`: the blocks are gone; `AllBlocksCleared`: all of the replica's are.
- Sequence numbers: each batch carries the publisher's next number. A jump (batches lost:
  a slow subscriber, a reconnect) or a step back (the engine restarted) means the index no
  longer knows what the replica holds, so it forgets the replica and starts over from that
  batch: it under-estimates a replica for a while, never over-estimates it for long.
- Memory is bounded: at most `max_blocks_per_replica` blocks per replica; past that the
  longest-known blocks are forgotten first (an engine evicts least recently used blocks,
  which are mostly the oldest stored).

Pure: no I/O, no clock. Not thread-safe; one event loop owns one index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from data_plane.gateway.kv_events.block_keys import ROOT, BlockKey, block_key
from data_plane.gateway.kv_events.wire import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    EngineBlockHash,
    KvEvent,
)


@dataclass
class _ReplicaBlocks:
    keys: dict[EngineBlockHash, BlockKey] = field(default_factory=dict)
    """Engine hash -> gateway key, oldest first."""
    block_size: int | None = None
    last_seq: int | None = None


@dataclass
class IndexStats:
    """Counters for tests and metrics."""

    gaps: int = 0
    orphans: int = 0
    """Stored blocks skipped because their parent was unknown."""
    trimmed: int = 0
    """Blocks forgotten to stay within the memory bound."""


class KvBlockIndex:
    """The blocks each replica holds, by key."""

    def __init__(self, max_blocks_per_replica: int = 1 << 15) -> None:
        if max_blocks_per_replica < 1:
            raise ValueError("max_blocks_per_replica must be positive")
        self.max_blocks_per_replica = max_blocks_per_replica
        self._replicas: dict[str, _ReplicaBlocks] = {}
        self._holders: dict[BlockKey, dict[str, int]] = {}
        self.stats = IndexStats()

    # -- observation -------------------------------------------------------------------

    def replicas(self) -> list[str]:
        return list(self._replicas)

    def num_blocks(self, replica: str) -> int:
        blocks = self._replicas.get(replica)
        return len(blocks.keys) if blocks is not None else 0

    def block_size(self, replica: str) -> int | None:
        blocks = self._replicas.get(replica)
        return blocks.block_size if blocks is not None else None

    def holders(self, key: BlockKey) -> dict[str, int] | None:
        """The replicas holding the block `key` (name -> copies), None when none does."""
        return self._holders.get(key)

    # -- updates -----------------------------------------------------------------------

    def apply(self, replica: str, seq: int, events: Iterable[KvEvent]) -> None:
        """One batch from `replica`, numbered `seq` by its publisher."""
        blocks = self._replicas.setdefault(replica, _ReplicaBlocks())
        if blocks.last_seq is not None and seq != blocks.last_seq + 1:
            self.stats.gaps += 1
            self._clear(replica, blocks)
        blocks.last_seq = seq
        for event in events:
            if isinstance(event, BlockStored):
                self._stored(replica, blocks, event)
            elif isinstance(event, BlockRemoved):
                self._removed(replica, blocks, event.block_hashes)
            elif isinstance(event, AllBlocksCleared):
                self._clear(replica, blocks)

    def forget(self, replica: str) -> None:
        """The replica left (or its stream broke): drop everything known about it."""
        blocks = self._replicas.pop(replica, None)
        if blocks is not None:
            self._clear(replica, blocks)

    def _stored(self, replica: str, blocks: _ReplicaBlocks, event: BlockStored) -> None:
        if event.parent_block_hash is None:
            parent = ROOT
        else:
            known = blocks.keys.get(event.parent_block_hash)
            if known is None:
                self.stats.orphans += len(event.block_hashes)
                return
            parent = known
        size = event.block_size
        blocks.block_size = size
        for i, engine_hash in enumerate(event.block_hashes):
            extra = _extra(event, i)
            parent = block_key(parent, event.token_ids[i * size : (i + 1) * size], extra)
            if engine_hash in blocks.keys:
                continue
            blocks.keys[engine_hash] = parent
            holders = self._holders.setdefault(parent, {})
            holders[replica] = holders.get(replica, 0) + 1
        excess = len(blocks.keys) - self.max_blocks_per_replica
        if excess > 0:
            self.stats.trimmed += excess
            ordered = iter(blocks.keys)
            oldest = [next(ordered) for _ in range(excess)]
            self._removed(replica, blocks, oldest)

    def _removed(
        self, replica: str, blocks: _ReplicaBlocks, hashes: Sequence[EngineBlockHash]
    ) -> None:
        for engine_hash in hashes:
            key = blocks.keys.pop(engine_hash, None)
            if key is not None:
                self._release(replica, key)

    def _release(self, replica: str, key: BlockKey) -> None:
        holders = self._holders.get(key)
        if holders is None:
            return
        count = holders.get(replica, 0) - 1
        if count > 0:
            holders[replica] = count
            return
        holders.pop(replica, None)
        if not holders:
            del self._holders[key]

    def _clear(self, replica: str, blocks: _ReplicaBlocks) -> None:
        for key in blocks.keys.values():
            self._release(replica, key)
        blocks.keys.clear()


def _extra(event: BlockStored, i: int) -> tuple[str, ...] | None:
    """The block's extra keys as strings (the adapter alone when the event lists none)."""
    if event.extra_keys is not None and i < len(event.extra_keys):
        keys = event.extra_keys[i]
        return tuple(k if isinstance(k, str) else repr(k) for k in keys) if keys else None
    return (event.lora_name,) if event.lora_name else None
