"""Prefix-cache block hashes computed the way vLLM's `--prefix-caching-hash-algo sha256_cbor`
computes them, so that the hashes in the simulator's KV-cache events look like vLLM's.

A full block of `block_size` tokens is hashed with its parent's hash:

    hash(block) = sha256(canonical_cbor([parent, [token ids...], extra_keys]))

- `parent` is the previous block's hash; the first block of a prompt uses `NONE_HASH`,
  `sha256(canonical_cbor("vllm-none-hash"))` (vLLM's fixed seed when `PYTHONHASHSEED` is
  unset and the algorithm is cryptographic).
- `extra_keys` is `None` or an array of tagged keys: `["lora", name]` for a request to an
  adapter (vLLM also adds the adapter's path; the simulator's engine core knows only the
  name), then `["cache_salt", salt]` on the first block only.

Two requests share a cached block only when everything before it, the adapter and the salt
are the same. The canonical CBOR here covers exactly the values used (unsigned and
negative integers, byte and text strings, arrays, null), each in its shortest form, as
`cbor2.dumps(..., canonical=True)` writes them.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

BlockHash = bytes


def _head(major: int, value: int) -> bytes:
    """A CBOR item head: major type and argument, in the shortest encoding."""
    top = major << 5
    if value < 24:
        return bytes((top | value,))
    if value < 0x100:
        return bytes((top | 24, value))
    if value < 0x10000:
        return bytes((top | 25,)) + value.to_bytes(2, "big")
    if value < 0x1_0000_0000:
        return bytes((top | 26,)) + value.to_bytes(4, "big")
    return bytes((top | 27,)) + value.to_bytes(8, "big")


def cbor(value: object) -> bytes:
    """Canonical CBOR of int, bytes, str, None and (nested) tuples or lists of them."""
    if value is None:
        return b"\xf6"
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode()
        return _head(3, len(data)) + data
    if isinstance(value, tuple | list):
        return _head(4, len(value)) + b"".join(cbor(item) for item in value)
    raise TypeError(f"no canonical CBOR for {type(value).__name__}")


def sha256_cbor(value: object) -> BlockHash:
    return hashlib.sha256(cbor(value)).digest()


NONE_HASH: BlockHash = sha256_cbor("vllm-none-hash")
"""The parent of a prompt's first block."""


def extra_keys(
    adapter: str | None, salt: str | None, first_block: bool
) -> tuple[tuple[str, str], ...] | None:
    """The tagged extra keys of a block (None when there are none)."""
    keys: list[tuple[str, str]] = []
    if adapter:
        keys.append(("lora", adapter))
    if first_block and salt:
        keys.append(("cache_salt", salt))
    return tuple(keys) or None


def block_hashes(
    token_ids: Sequence[int],
    block_size: int,
    *,
    adapter: str | None,
    salt: str | None,
    start: int = 0,
    parent: BlockHash | None = None,
) -> list[BlockHash]:
    """Hashes of the full blocks of `token_ids` from block index `start` on, chained from
    `parent` (the hash of block `start - 1`; None for the first block)."""
    hashes: list[BlockHash] = []
    first = parent is None  # the salt goes into the prompt's first block only
    previous = NONE_HASH if parent is None else parent
    for begin in range(start * block_size, len(token_ids) - block_size + 1, block_size):
        block = tuple(token_ids[begin : begin + block_size])
        previous = sha256_cbor((previous, block, extra_keys(adapter, salt, first)))
        hashes.append(previous)
        first = False
    return hashes
