"""Settings of the precise prefix policy's event subscriptions (`HOIST_GATEWAY_KV_EVENTS_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KvEventsSettings(BaseSettings):
    """Read when a Model with `routingPolicy: precise-prefix` gets its policy."""

    model_config = SettingsConfigDict(env_prefix="HOIST_GATEWAY_KV_EVENTS_", extra="forbid")

    port_offset: int = Field(default=1000, ge=-65535, le=65535)
    """A replica at `http://HOST:PORT` publishes its KV-cache events at
    `tcp://HOST:PORT+port_offset` (follower.py)."""
    topic: str = ""
    """The ZMQ topic the engines publish under (`--kv-events-config`'s `topic`)."""
    idle_s: float = Field(default=30.0, gt=0)
    """Stop following a replica (and forget its blocks) once it has not been a routing
    candidate for this long."""
    max_blocks_per_replica: int = Field(default=1 << 15, ge=1)
    """Blocks remembered per replica at most (the oldest are forgotten first)."""
    block_size: int = Field(default=16, ge=1)
    """Block size assumed for a replica until its first `BlockStored` says."""
    kv_weight: float = Field(default=1.0, ge=0)
    """Weight of the precise prefix score (0..1) in a replica's total."""
    load_weight: float = Field(default=0.5, ge=0)
    """Weight of the load score, 1 - load / bound (0..1), in a replica's total."""
