"""The gateway's own keys for prompt blocks, computed alike from an engine's events and
from a request's prompt, so that the two meet without knowing the engine's hash algorithm.

A block's key chains over everything before it, as the engine's block hash does:

    key(block) = blake2b-64(key(parent) | token ids | extra keys)

with key 0 as the parent of a prompt's first block. The extra keys are the engine's
untagged ones (vLLM's `BlockStored.extra_keys`): the adapter name, then on the first block
the request's `cache_salt`. The engine's own hash (sha256 over pickle or CBOR, or xxhash
with a random per-process seed) need not be reproducible: the index maps it to this key
when the block is stored and back when it is removed.

What must match the engine is the tokenization (tokens.py) and the block size (carried by
every `BlockStored`). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence

BlockKey = int
ROOT: BlockKey = 0
"""The parent of a prompt's first block."""


def block_key(parent: BlockKey, token_ids: Sequence[int], extra: Sequence[str] | None) -> BlockKey:
    digest = hashlib.blake2b(parent.to_bytes(8, "big"), digest_size=8)
    digest.update(array("q", token_ids).tobytes())
    if extra:
        digest.update(b"\x00".join(e.encode() for e in extra))
    return int.from_bytes(digest.digest(), "big") or 1  # never ROOT


def request_extra(adapter: str | None, salt: str | None, first: bool) -> tuple[str, ...] | None:
    """A request's extra keys for one block, as the engine publishes them."""
    keys = tuple(k for k in (adapter, salt if first else None) if k)
    return keys or None


def prompt_keys(
    token_ids: Sequence[int], block_size: int, *, adapter: str | None, salt: str | None
) -> list[BlockKey]:
    """The keys of the prompt's full blocks, in order."""
    keys: list[BlockKey] = []
    parent = ROOT
    for begin in range(0, len(token_ids) - block_size + 1, block_size):
        extra = request_extra(adapter, salt, begin == 0)
        parent = block_key(parent, token_ids[begin : begin + block_size], extra)
        keys.append(parent)
    return keys
