"""The simulator's KV-cache events: vLLM's block hashing, the events an engine records,
and their wire format as a vLLM subscriber decodes it."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest

from data_plane.inference.simulator.block_hashing import NONE_HASH, block_hashes, cbor
from data_plane.inference.simulator.engine_core import EngineCore
from data_plane.inference.simulator.kv_events import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    KVEventBatch,
    KvEventLog,
    KvEventsConfig,
    offset_endpoint,
)
from data_plane.inference.simulator.profiles import TINY
from tests.support.sim_driver import request, run

BS = TINY.block_size


# -- vLLM's hashing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(23, id="small-int"),
        pytest.param(24, id="one-byte-int"),
        pytest.param(2**31 + 1000, id="four-byte-int"),
        pytest.param(2**40, id="eight-byte-int"),
        pytest.param(-5, id="negative"),
        pytest.param("vllm-none-hash", id="text"),
        pytest.param(b"\x00" * 32, id="bytes"),
        pytest.param(None, id="null"),
        pytest.param((b"\x01" * 32, tuple(range(16)), (("lora", "sql"),)), id="block"),
        pytest.param(tuple(range(300)), id="long-array"),
    ],
)
def test_cbor_is_canonical_cbor_as_cbor2_writes_it(value: Any) -> None:
    cbor2 = pytest.importorskip("cbor2")  # vLLM's own dependency for sha256_cbor
    assert cbor(value) == cbor2.dumps(value, canonical=True)


def test_block_hashes_are_vllm_sha256_cbor_chained_from_none_hash() -> None:
    tokens = list(range(1000, 1000 + 2 * BS + 3))
    hashes = block_hashes(tokens, BS, adapter="sql", salt="tenant-a")
    assert hashlib.sha256(cbor("vllm-none-hash")).digest() == NONE_HASH
    first = hashlib.sha256(
        cbor((NONE_HASH, tuple(tokens[:BS]), (("lora", "sql"), ("cache_salt", "tenant-a"))))
    ).digest()
    second = hashlib.sha256(
        cbor((first, tuple(tokens[BS : 2 * BS]), (("lora", "sql"),)))  # the salt: first only
    ).digest()
    assert hashes == [first, second]
    resumed = block_hashes(tokens, BS, adapter="sql", salt="tenant-a", start=1, parent=first)
    assert resumed == [second]


# -- what an engine records ----------------------------------------------------------------


def _core(num_blocks: int) -> EngineCore:
    core = EngineCore(TINY.with_overrides(num_gpu_blocks=num_blocks), max_model_len=4 * BS)
    core.kv.events = KvEventLog()
    return core


def test_a_computed_prompt_stores_its_full_blocks_chained_from_no_parent() -> None:
    core = _core(64)
    prompt = list(range(2000, 2000 + 3 * BS + 5))
    r = request(prompt, 1, adapter="sql", salt="s")
    core.add(r)
    run(core)
    assert core.kv.events is not None
    events = core.kv.events.drain()
    stored = [e for e in events if isinstance(e, BlockStored)]
    hashes = block_hashes(prompt, BS, adapter="sql", salt="s")
    assert [h for e in stored for h in e.block_hashes] == hashes
    assert stored[0].parent_block_hash is None
    assert stored[0].token_ids[: 3 * BS] == prompt[: 3 * BS]
    assert stored[0].block_size == BS
    assert stored[0].lora_name == "sql"
    assert stored[0].extra_keys is not None
    assert stored[0].extra_keys[0] == ("sql", "s")  # the salt on the first block only
    assert stored[0].extra_keys[1] == ("sql",)
    assert core.kv.events.drain() == []


def test_a_cache_hit_stores_nothing_new_and_a_longer_prompt_chains_from_its_parent() -> None:
    core = _core(64)
    prompt = list(range(3000, 3000 + 2 * BS + 1))
    core.add(request(prompt, 1))
    run(core)
    assert core.kv.events is not None
    first = core.kv.events.drain()
    core.add(request([*prompt[: 2 * BS], *range(9000, 9000 + BS + 1)], 1))
    run(core)
    later = [e for e in core.kv.events.drain() if isinstance(e, BlockStored)]
    hashes = block_hashes(prompt, BS, adapter=None, salt=None)
    assert [h for e in first if isinstance(e, BlockStored) for h in e.block_hashes] == hashes
    assert later[0].parent_block_hash == hashes[1]  # blocks 0-1 were hits: not stored again
    assert later[0].token_ids[:BS] == list(range(9000, 9000 + BS))


def test_eviction_removes_and_a_reset_clears() -> None:
    core = _core(4)  # 4 blocks: the second prompt evicts the first one's
    a = list(range(100, 100 + 3 * BS))
    core.add(request(a, 1))
    run(core)
    core.add(request(list(range(500, 500 + 3 * BS)), 1))
    run(core)
    assert core.kv.events is not None
    events = core.kv.events.drain()
    removed = [h for e in events if isinstance(e, BlockRemoved) for h in e.block_hashes]
    assert removed
    assert set(removed) <= set(block_hashes(a, BS, adapter=None, salt=None))
    assert core.kv.reset_prefix_cache()
    assert core.kv.events.drain() == [AllBlocksCleared()]


# -- the wire format, decoded as vLLM's subscriber decodes it ------------------------------
# These are vLLM's declared types (vllm/distributed/kv_events.py), as a consumer writes them.


class VllmEventBatch(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    ts: float
    events: list[Any]
    data_parallel_rank: int | None = None


class VllmEvent(msgspec.Struct, omit_defaults=True, gc=False, tag=True):
    pass


class VllmBlockStored(VllmEvent, tag="BlockStored"):
    block_hashes: list[bytes | int]
    parent_block_hash: bytes | int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None
    medium: str | None
    lora_name: str | None
    extra_keys: list[tuple[Any, ...] | None] | None = None
    group_idx: int | None = None


class VllmBlockRemoved(VllmEvent, tag="BlockRemoved"):
    block_hashes: list[bytes | int]
    medium: str | None
    group_idx: int | None = None


class VllmAllBlocksCleared(VllmEvent, tag="AllBlocksCleared"):
    pass


class VllmKVEventBatch(VllmEventBatch):
    events: list[VllmBlockStored | VllmBlockRemoved | VllmAllBlocksCleared]


def test_a_batch_decodes_with_vllms_types_and_has_vllms_shape() -> None:
    log = KvEventLog()
    hashes = block_hashes(list(range(2 * BS)), BS, adapter="sql", salt=None)
    log.stored(hashes, None, list(range(2 * BS)), BS, adapter="sql", salt=None)
    log.removed(hashes[1])
    log.removed(hashes[0])
    log.cleared()
    payload = msgspec.msgpack.encode(KVEventBatch(ts=1.5, events=log.drain(), data_parallel_rank=0))

    batch = msgspec.msgpack.Decoder(VllmKVEventBatch).decode(payload)
    assert batch.ts == 1.5
    assert batch.data_parallel_rank == 0
    stored, removed, cleared = batch.events
    assert isinstance(stored, VllmBlockStored)
    assert stored.block_hashes == hashes
    assert stored.parent_block_hash is None
    assert stored.token_ids == list(range(2 * BS))
    assert stored.medium == "GPU"
    assert stored.extra_keys == [("sql",), ("sql",)]
    assert isinstance(removed, VllmBlockRemoved)
    assert removed.block_hashes == [hashes[1], hashes[0]]  # consecutive removals: one event
    assert isinstance(cleared, VllmAllBlocksCleared)

    raw = msgspec.msgpack.decode(payload)  # untyped: an array batch of tagged maps
    assert raw[0] == 1.5
    assert raw[2] == 0
    assert raw[1][0]["type"] == "BlockStored"
    assert raw[1][0]["block_hashes"] == hashes
    assert raw[1][2] == {"type": "AllBlocksCleared"}


@pytest.mark.parametrize(
    ("endpoint", "index", "expected"),
    [
        pytest.param("tcp://*:5557", 0, "tcp://127.0.0.1:5557", id="wildcard-binds-host"),
        pytest.param("tcp://*:5557", 3, "tcp://127.0.0.1:5560", id="engine-3-offset"),
        pytest.param("tcp://*:0", 2, "tcp://127.0.0.1:0", id="port-0-left-to-os"),
        pytest.param("tcp://10.0.0.5:7000", 1, "tcp://10.0.0.5:7001", id="explicit-host"),
        pytest.param("ipc:///tmp/kv", 1, "ipc:///tmp/kv_dp1", id="ipc-suffix"),
    ],
)
def test_each_engine_gets_its_own_endpoint(endpoint: str, index: int, expected: str) -> None:
    assert offset_endpoint(endpoint, index, "127.0.0.1") == expected


def test_the_config_is_vllms_json() -> None:
    config = KvEventsConfig.model_validate(
        {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": "tcp://*:5557"}
    )
    assert config.publishes
    assert not KvEventsConfig().publishes
    assert not KvEventsConfig(enable_kv_cache_events=True, publisher="null").publishes
    with pytest.raises(ValueError, match="bogus"):
        KvEventsConfig.model_validate({"enable_kv_cache_events": True, "bogus": 1})


@pytest.mark.parametrize(
    ("blocks", "runs"),
    [
        pytest.param([0, 1, 2], [[0, 1, 2]], id="one-run-from-the-start"),
        pytest.param([1, 2], [[1, 2]], id="one-run-with-a-parent"),
        pytest.param([0, 2, 3], [[0], [2, 3]], id="a-hole-splits-the-run"),
    ],
)
def test_newly_cached_blocks_are_stored_as_runs_with_their_parents(
    blocks: list[int], runs: list[list[int]]
) -> None:
    tokens = list(range(4 * BS))
    hashes = block_hashes(tokens, BS, adapter=None, salt=None)
    log = KvEventLog()
    log.stored_runs(hashes, blocks, lambda b, e: tokens[b:e], BS, adapter=None, salt=None)
    events = log.drain()
    assert [[hashes.index(h) for h in e.block_hashes] for e in events] == runs  # type: ignore[union-attr]
    for event, blocks_of_run in zip(events, runs, strict=True):
        first, last = blocks_of_run[0], blocks_of_run[-1]
        assert isinstance(event, BlockStored)
        assert event.parent_block_hash == (hashes[first - 1] if first else None)
        assert event.token_ids == tokens[first * BS : (last + 1) * BS]
