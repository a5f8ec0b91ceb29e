"""The gateway's KV-cache-event part: the shared index, the follower, their lifecycle.

The Gateway (runtime.py) builds one `KvEvents` in `__init__` (the index, no socket), gives
its `context` to the Fleet (so `precise-prefix` profiles read the index), calls `follow`
after each discovery refresh and `close` at stop. The follower, and with it the ZMQ
context, is built at the first refresh that finds a Model whose `routingPolicy` is
`precise-prefix`: a gateway without one opens no socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from data_plane.gateway.kv_events.follower import KvEventFollower
from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.settings import KvEventsSettings
from data_plane.gateway.scheduling.context import SchedulingContext

if TYPE_CHECKING:
    from data_plane.gateway.fleet import ModelRoute

PRECISE_PREFIX = "precise-prefix"


class KvEvents:
    def __init__(self, settings: KvEventsSettings) -> None:
        self.settings = settings
        self.index = KvBlockIndex(settings.max_blocks_per_replica) if settings.enabled else None
        """None when KV events are off (`HOIST_GATEWAY_KV_EVENTS_ENABLED=false`)."""
        self.follower: KvEventFollower | None = None
        """Built at the first refresh with a `precise-prefix` Model."""
        self.context = SchedulingContext(
            kv_index=self.index,
            kv_block_size=settings.block_size,
            kv_weight=settings.kv_weight,
            load_weight=settings.load_weight,
        )

    def follow(self, models: Iterable[ModelRoute]) -> None:
        """Follow the replicas of the `precise-prefix` Models (discovery just refreshed)."""
        if self.index is None:
            return
        replicas = [r for m in models if m.policy_name == PRECISE_PREFIX for r in m.replicas]
        if self.follower is None:
            if not replicas:
                return
            self.follower = KvEventFollower(
                self.index, port_offset=self.settings.port_offset, topic=self.settings.topic
            )
        self.follower.follow(replicas)

    async def close(self) -> None:
        if self.follower is not None:
            await self.follower.close()
            self.follower = None
