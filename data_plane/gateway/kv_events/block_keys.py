"""The gateway's own keys for prompt blocks, computed alike from an engine's events and
from a request's prompt, so that the two meet without knowing the engine's hash algorithm.

A block's key chains over everything before it, as the engine's block hash does:

    key(block) = hash((key(parent), (token ids...), extra keys))

with key 0 as the parent of a prompt's first block. Python's own 64-bit tuple hash: the keys
only have to agree within one gateway process (both sides are computed here), and it costs
a microsecond a block where a cryptographic digest costs ten. A collision can only make a
replica look like it holds a block it does not (a worse routing choice, never wrong data:
the engine checks its own hashes). The extra keys are the engine's
untagged ones (vLLM's `BlockStored.extra_keys`): the adapter name, then on the first block
the request's `cache_salt`. The engine's own hash (sha256 over pickle or CBOR, or xxhash
with a random per-process seed) need not be reproducible: the index maps it to this key
when the block is stored and back when it is removed.

What must match the engine is the tokenization (tokens.py) and the block size (carried by
every `BlockStored`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

BlockKey = int
ROOT: BlockKey = 0
"""The parent of a prompt's first block."""


def block_key(
    parent: BlockKey, token_ids: Sequence[int], extra: tuple[str, ...] | None
) -> BlockKey:
    return hash((parent, tuple(token_ids), extra)) or 1  # never ROOT


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
