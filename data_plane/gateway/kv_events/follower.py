"""Keep one event subscription per replica of the Models that route by `precise-prefix`.

How the gateway finds a replica's event endpoint: a port convention, the same under every
discovery (static, local, kube). A replica whose engine answers at `http://HOST:PORT` publishes
its KV-cache events at `tcp://HOST:PORT+offset` (`HOIST_GATEWAY_KV_EVENTS_PORT_OFFSET`), i.e.
the engine is started with `--kv-events-config '{"enable_kv_cache_events": true,
"publisher": "zmq", "endpoint": "tcp://*:PORT+offset"}'` (the simulator offsets engine i of
a multi-engine process by i, as vLLM offsets by data-parallel rank, so `--base-port B` and
`tcp://*:B+offset` line up). No schema change is needed; the convention is what a Model's
engine settings and the gateway agree on (control_plane/api/simulator_args.py for `sim`).

The Gateway owns one follower (runtime.py): it is built when a discovery refresh first
finds a `precise-prefix` Model, told that Model's replicas at every refresh (`follow`), and
closed at stop. A replica gone from the set (it left discovery, or its Model changed
policy) is unsubscribed and its blocks forgotten; an unready one stays followed (its engine
may still run, and ZMQ reconnects by itself). The follower is the I/O shell of the precise
prefix scorer; the scorer and the index stay pure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

import zmq.asyncio

from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.subscriber import follow_replica


class EngineReplica(Protocol):
    """What the follower reads about a replica (fleet.Replica implements it)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str:
        """The engine's base URL, `http://HOST:PORT`."""
        ...


def event_endpoint(engine_url: str, port_offset: int) -> str | None:
    """`tcp://HOST:PORT+offset` for the engine at `engine_url`; None without a port."""
    parts = urlsplit(engine_url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if parts.hostname is None or port is None or not 0 < port + port_offset < 65536:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"tcp://{host}:{port + port_offset}"


class KvEventFollower:
    """Subscriptions of the followed replicas, feeding one index."""

    def __init__(self, index: KvBlockIndex, *, port_offset: int, topic: str = "") -> None:
        self.index = index
        self.port_offset = port_offset
        self.topic = topic
        self._context: zmq.asyncio.Context | None = None
        self._tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}
        """Replica name -> (its event endpoint, the subscription)."""
        self._stopping: set[asyncio.Task[None]] = set()
        """Cancelled subscriptions until they have closed their sockets."""

    def follow(self, replicas: Iterable[EngineReplica]) -> None:
        """Follow exactly `replicas` from now on: subscribe to the new ones (and to those
        whose endpoint moved), unsubscribe from and forget the others. Called on the event
        loop at each discovery refresh."""
        wanted: dict[str, str] = {}
        for replica in replicas:
            endpoint = event_endpoint(replica.url, self.port_offset)
            if endpoint is not None:
                wanted[replica.name] = endpoint
        for name, (endpoint, _) in list(self._tasks.items()):
            if wanted.get(name) != endpoint:
                self._stop(name)
        for name, endpoint in wanted.items():
            if name not in self._tasks:
                self._start(name, endpoint)

    def followed(self) -> list[str]:
        return list(self._tasks)

    def _start(self, name: str, endpoint: str) -> None:
        if self._context is None:
            self._context = zmq.asyncio.Context()
        task = asyncio.get_running_loop().create_task(
            follow_replica(self._context, self.index, name, endpoint, self.topic),
            name=f"kv-events-{name}",
        )
        self._tasks[name] = (endpoint, task)

    def _stop(self, name: str) -> None:
        _, task = self._tasks.pop(name)
        task.cancel()
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        self.index.forget(name)

    async def close(self) -> None:
        """Cancel every subscription (each closes its socket), then end the ZMQ context."""
        tasks = [task for _, task in self._tasks.values()] + list(self._stopping)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._context is not None:  # every socket is closed: term() does not wait
            self._context.term()
            self._context = None
