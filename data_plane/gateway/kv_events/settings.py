"""Settings of the precise prefix profile and its event subscriptions
(`HOIST_GATEWAY_KV_EVENTS_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane.api.constants import KV_EVENTS_PORT_OFFSET


class KvEventsSettings(BaseSettings):
    """Read once by the Gateway (runtime.py), which owns the index and the follower."""

    model_config = SettingsConfigDict(env_prefix="HOIST_GATEWAY_KV_EVENTS_", extra="forbid")

    enabled: bool = True
    """Follow the engines' KV-cache events for the Models whose `routingPolicy` is
    `precise-prefix`. False: no index and no subscription; such Models route every request
    as a KV miss (the prefix ring)."""
    port_offset: int = Field(default=KV_EVENTS_PORT_OFFSET, ge=-65535, le=65535)
    """A replica at `http://HOST:PORT` publishes its KV-cache events at
    `tcp://HOST:PORT+port_offset` (follower.py); the default is the one the control plane
    starts `engine: sim` engines with (control_plane/api/simulator_args.py)."""
    topic: str = ""
    """The ZMQ topic the engines publish under (`--kv-events-config`'s `topic`)."""
    max_blocks_per_replica: int = Field(default=1 << 15, ge=1)
    """Blocks remembered per replica at most (the oldest are forgotten first)."""
    block_size: int = Field(default=16, ge=1)
    """Block size assumed for a replica until its first `BlockStored` says."""
    kv_weight: float = Field(default=1.0, ge=0)
    """Weight of the precise prefix score (0..1) in a replica's total."""
    load_weight: float = Field(default=0.5, ge=0)
    """Weight of the load score, 1 - load / bound (0..1), in a replica's total."""
