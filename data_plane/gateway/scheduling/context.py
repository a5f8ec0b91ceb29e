"""State that some profiles share across Models, injected where the profiles are made (pure).

`Gateway.__init__` builds one `SchedulingContext` and hands it to its `Fleet`, which passes
it to `make_profile` for every Model; a profile takes what it needs from it. Nothing here
does I/O: the KV index is fed by the gateway's `KvEventFollower` (kv_events/follower.py),
the profiles only read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_plane.gateway.kv_events.index import KvBlockIndex


@dataclass(frozen=True, slots=True)
class SchedulingContext:
    kv_index: KvBlockIndex | None = None
    """Which replica holds which prompt blocks, by the engines' KV-cache events, for the
    `precise-prefix` profile (one index for all Models: replica names are unique across
    them under every discovery). None: KV events are off, and `precise-prefix` routes every
    request as a miss (the prefix ring)."""
    kv_block_size: int = 16
    """Block size assumed for a replica until its events say
    (`HOIST_GATEWAY_KV_EVENTS_BLOCK_SIZE`)."""
    kv_weight: float = 1.0
    """Weight of the precise prefix score among KV-cache hits."""
    load_weight: float = 0.5
    """Weight of the load headroom (1 - load / bound) among KV-cache hits."""
