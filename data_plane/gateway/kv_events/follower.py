"""Keep one event subscription per replica that the precise prefix policy routes among.

How the gateway finds a replica's event endpoint: a port convention, the same under every
discovery (static, local, kube). A replica whose engine answers at `http://HOST:PORT` publishes
its KV-cache events at `tcp://HOST:PORT+offset` (`HOIST_GATEWAY_KV_EVENTS_PORT_OFFSET`), i.e.
the engine is started with `--kv-events-config '{"enable_kv_cache_events": true,
"publisher": "zmq", "endpoint": "tcp://*:PORT+offset"}'` (the simulator offsets engine i of
a multi-engine process by i, as vLLM offsets by data-parallel rank, so `--base-port B` and
`tcp://*:B+offset` line up). No schema change is needed; the convention is what a Model's
engine settings and the gateway agree on.

Subscriptions start the first time a replica is a candidate, and stop (its blocks are
forgotten) once it has not been one for `idle_s`: a replica that left discovery, or one that
stayed unready. The follower is the I/O shell of the precise prefix scorer; the scorer and
the index stay pure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from urllib.parse import urlsplit

import zmq.asyncio

from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.subscriber import follow_replica
from data_plane.gateway.routing.policy import ReplicaLoad

_SWEEP_EVERY_S = 1.0


def event_endpoint(engine_url: str, port_offset: int) -> str | None:
    """`tcp://HOST:PORT+offset` for the engine at `engine_url`; None without a port."""
    parts = urlsplit(engine_url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if parts.hostname is None or port is None or not 0 < port + port_offset < 65536:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"tcp://{host}:{port + port_offset}"


class KvEventFollower:
    """Subscriptions of one Model's replicas, feeding one index."""

    def __init__(
        self, index: KvBlockIndex, *, port_offset: int, topic: str = "", idle_s: float = 30.0
    ) -> None:
        self.index = index
        self.port_offset = port_offset
        self.topic = topic
        self.idle_s = idle_s
        self._context: zmq.asyncio.Context | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[str, float] = {}
        self._last_names: tuple[str, ...] = ()
        self._next_sweep = 0.0

    def follow(self, candidates: Sequence[ReplicaLoad]) -> None:
        """Make sure each candidate is followed; stop following long-absent ones. Called on
        the event loop, once per routing decision (cheap when the set is unchanged)."""
        now = asyncio.get_running_loop().time()
        names = tuple(c.name for c in candidates)
        if names != self._last_names:
            self._last_names = names
            for candidate in candidates:
                if candidate.name not in self._tasks:
                    self._start(candidate)
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_EVERY_S
            for name in names:
                self._seen[name] = now
            for name in [n for n, t in self._seen.items() if now - t > self.idle_s]:
                self._stop(name)

    def followed(self) -> list[str]:
        return list(self._tasks)

    def _start(self, candidate: ReplicaLoad) -> None:
        url = getattr(candidate, "url", None)  # the fleet's replicas carry their engine URL
        endpoint = event_endpoint(url, self.port_offset) if isinstance(url, str) else None
        if endpoint is None:
            return
        if self._context is None:
            self._context = zmq.asyncio.Context()
        self._seen[candidate.name] = asyncio.get_running_loop().time()
        self._tasks[candidate.name] = asyncio.get_running_loop().create_task(
            follow_replica(self._context, self.index, candidate.name, endpoint, self.topic),
            name=f"kv-events-{candidate.name}",
        )

    def _stop(self, name: str) -> None:
        self._seen.pop(name, None)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
        self.index.forget(name)
        self._last_names = ()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._context is not None:
            self._context.term()
            self._context = None
