"""The simulator's KV-cache events, in vLLM's wire types (`--kv-events-config`).

vLLM's block pool records an event whenever a full block's hash enters the prefix cache
(`BlockStored`), leaves it (`BlockRemoved`, on eviction) or the whole cache is reset
(`AllBlocksCleared`); after each engine step the step's events go out as one `KVEventBatch`
`[ts, [event, ...], data_parallel_rank]`, msgpack-encoded. Each event is a msgpack map
tagged by its class name under `type`, fields left out when they hold their default:

    BlockStored:  block_hashes, parent_block_hash (None for a prompt's first block),
                  token_ids (all blocks' tokens, in order), block_size, lora_id, medium,
                  lora_name, extra_keys (per block: the untagged extra hash keys, e.g.
                  [lora_name, cache_salt] on a first block, or None)
    BlockRemoved: block_hashes, medium
    AllBlocksCleared: (no fields)

The types are written from vLLM's documented format (vllm/distributed/kv_events.py), so
that a vLLM subscriber decodes the simulator's batches unchanged. `KvEventLog` collects one
engine's events between steps. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec
import pydantic

from data_plane.inference.simulator.block_hashing import BlockHash

MEDIUM_GPU = "GPU"


class EventBatch(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    ts: float
    events: list[Any]
    data_parallel_rank: int | None = None


class KVCacheEvent(msgspec.Struct, omit_defaults=True, gc=False, tag=True):
    """One change to the prefix cache (a msgpack map tagged `type`: the class name)."""


class BlockStored(KVCacheEvent):
    block_hashes: list[BlockHash]
    parent_block_hash: BlockHash | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None
    medium: str | None
    lora_name: str | None
    extra_keys: list[tuple[Any, ...] | None] | None = None


class BlockRemoved(KVCacheEvent):
    block_hashes: list[BlockHash]
    medium: str | None


class AllBlocksCleared(KVCacheEvent):
    pass


class KVEventBatch(EventBatch):
    events: list[BlockStored | BlockRemoved | AllBlocksCleared]


KvEvent = BlockStored | BlockRemoved | AllBlocksCleared


def event_extra_keys(adapter: str | None, salt: str | None, first: bool) -> tuple[str, ...] | None:
    """A block's extra keys as events carry them: untagged (the adapter name, then the salt
    on a prompt's first block)."""
    keys = tuple(k for k in (adapter, salt if first else None) if k)
    return keys or None


class KvEventLog:
    """The events of one engine since the last `drain`, in the order they happened."""

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: list[BlockStored | BlockRemoved | AllBlocksCleared] = []

    def __len__(self) -> int:
        return len(self._events)

    def stored(
        self,
        hashes: Sequence[BlockHash],
        parent: BlockHash | None,
        token_ids: Sequence[int],
        block_size: int,
        *,
        adapter: str | None,
        salt: str | None,
    ) -> None:
        """Consecutive blocks entered the cache; `parent` is the hash of the block before
        the first (None when the first is the prompt's first block)."""
        extra = [
            event_extra_keys(adapter, salt, parent is None and i == 0) for i in range(len(hashes))
        ]
        self._events.append(
            BlockStored(
                block_hashes=list(hashes),
                parent_block_hash=parent,
                token_ids=list(token_ids),
                block_size=block_size,
                lora_id=None,
                medium=MEDIUM_GPU,
                lora_name=adapter,
                extra_keys=extra if any(e is not None for e in extra) else None,
            )
        )

    def stored_runs(
        self,
        hashes: Sequence[BlockHash],
        blocks: Sequence[int],
        tokens: Callable[[int, int], Sequence[int]],
        block_size: int,
        *,
        adapter: str | None,
        salt: str | None,
    ) -> None:
        """Blocks `blocks` (ascending indices into a request's `hashes`) entered the cache:
        one event per run of consecutive blocks; `tokens(begin, end)` gives their tokens."""
        run_start = 0
        for k in range(1, len(blocks) + 1):
            if k < len(blocks) and blocks[k] == blocks[k - 1] + 1:
                continue
            first, last = blocks[run_start], blocks[k - 1]
            self.stored(
                hashes[first : last + 1],
                hashes[first - 1] if first > 0 else None,
                tokens(first * block_size, (last + 1) * block_size),
                block_size,
                adapter=adapter,
                salt=salt,
            )
            run_start = k

    def removed(self, block_hash: BlockHash) -> None:
        """A block left the cache (consecutive removals share one event)."""
        last = self._events[-1] if self._events else None
        if isinstance(last, BlockRemoved):
            last.block_hashes.append(block_hash)
        else:
            self._events.append(BlockRemoved(block_hashes=[block_hash], medium=MEDIUM_GPU))

    def cleared(self) -> None:
        self._events.append(AllBlocksCleared())

    def drain(self) -> list[BlockStored | BlockRemoved | AllBlocksCleared]:
        events, self._events = self._events, []
        return events


class KvEventsConfig(pydantic.BaseModel):
    """vLLM's `--kv-events-config` (a JSON object); the simulator reads the same fields."""

    model_config = pydantic.ConfigDict(extra="forbid")

    enable_kv_cache_events: bool = False
    """Publish KV-cache events at all."""
    publisher: Literal["null", "zmq"] | None = None
    """`zmq` publishes; `null` (the default unless events are enabled) does not."""
    endpoint: str = "tcp://*:5557"
    """ZMQ PUB address. `tcp://*:P` binds port P (on the simulator's `--host`); engine i of
    a multi-engine process uses port P + i, as vLLM offsets it by data-parallel rank."""
    replay_endpoint: str | None = None
    """ZMQ ROUTER address answering replay requests (offset like `endpoint`); None: none."""
    buffer_steps: int = pydantic.Field(default=10_000, ge=1)
    """Batches kept for replay."""
    hwm: int = pydantic.Field(default=100_000, ge=0)
    """ZMQ high-water mark of the PUB socket (batches beyond it are dropped)."""
    max_queue_size: int = pydantic.Field(default=100_000, ge=1)
    """Accepted for vLLM compatibility (the simulator sends from its event loop, unqueued)."""
    topic: str = ""
    """The first frame of every message; subscribers filter on it."""

    @property
    def publishes(self) -> bool:
        return self.enable_kv_cache_events and (self.publisher or "zmq") == "zmq"


def offset_endpoint(endpoint: str, index: int, host: str) -> str:
    """`endpoint` for engine `index`: its TCP port plus `index`; a `*` host becomes `host`."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "tcp":
        return endpoint if index == 0 else f"{endpoint}_dp{index}"
    address, _, port = rest.rpartition(":")
    if address == "*":
        address = f"[{host}]" if ":" in host else host
    number = int(port)
    return f"tcp://{address}:{number + index if number else 0}"
