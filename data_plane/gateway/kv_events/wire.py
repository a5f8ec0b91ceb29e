"""vLLM's KV-cache event batches as a subscriber decodes them (msgpack, msgspec types).

One ZMQ message is three frames: topic, an 8-byte big-endian sequence number, and a
msgpack `KVEventBatch`: `[ts, [event, ...], data_parallel_rank]`, each event a map tagged
with its class name under `type`. Only the fields the index uses are declared; msgspec
skips the rest, so newer engines that add fields still decode. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

EngineBlockHash = bytes | int
"""A block hash as the engine publishes it: sha256 bytes, or an int (vLLM's
`VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES`). Opaque to the gateway."""


class BlockStored(msgspec.Struct, tag=True, gc=False):
    block_hashes: list[EngineBlockHash]
    parent_block_hash: EngineBlockHash | None
    token_ids: list[int]
    block_size: int
    lora_name: str | None = None
    extra_keys: list[list[Any] | None] | None = None


class BlockRemoved(msgspec.Struct, tag=True, gc=False):
    block_hashes: list[EngineBlockHash]


class AllBlocksCleared(msgspec.Struct, tag=True, gc=False):
    pass


KvEvent = BlockStored | BlockRemoved | AllBlocksCleared


class KvEventBatch(msgspec.Struct, array_like=True, gc=False):
    ts: float
    events: list[KvEvent]
    data_parallel_rank: int | None = None


def batch_decoder() -> msgspec.msgpack.Decoder[KvEventBatch]:
    """A decoder for one batch payload (raises msgspec.DecodeError on a malformed one)."""
    return msgspec.msgpack.Decoder(KvEventBatch)


def sequence_number(frame: bytes) -> int:
    return int.from_bytes(frame, "big", signed=True)
