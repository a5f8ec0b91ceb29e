"""Publish one engine's KV-cache events over ZMQ, framed as vLLM's `ZmqEventPublisher` does.

Every batch is one PUB message of three frames: the topic, an 8-byte big-endian sequence
number (0, 1, 2, ... from the publisher's start) and the msgpack payload of a
`KVEventBatch` (kv_events.py). The last `buffer_steps` payloads are kept; with a replay
endpoint, a ROUTER socket answers a request `[identity, b"", start_seq (8 bytes)]` with
every kept batch from `start_seq` on, each as `[identity, b"", topic, seq, payload]`, then
`[identity, b"", b"", -1 (8 bytes, signed), b""]`. A subscriber that sees a sequence number
jump knows it missed batches and can ask for them, or forget what it knew.

The PUB socket never blocks the engine: past the high-water mark ZMQ drops messages (the
subscriber sees the gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence

import msgspec
import zmq

from data_plane.inference.simulator.kv_events import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    KVEventBatch,
    KvEventsConfig,
    offset_endpoint,
)

END_OF_REPLAY = (-1).to_bytes(8, "big", signed=True)
_REPLAY_POLL_S = 0.05


class ZmqKvEventPublisher:
    """The KV-event publisher of engine `index` of this process."""

    def __init__(self, config: KvEventsConfig, *, index: int, host: str) -> None:
        self._context = zmq.Context()
        self._topic = config.topic.encode()
        self._buffer: deque[tuple[int, bytes]] = deque(maxlen=config.buffer_steps)
        self._encoder = msgspec.msgpack.Encoder()
        self._seq = 0
        self._replay_task: asyncio.Task[None] | None = None
        self._pub = self._context.socket(zmq.PUB)
        self._pub.set_hwm(config.hwm)
        self._pub.setsockopt(zmq.LINGER, 0)
        self.endpoint = self._open(self._pub, offset_endpoint(config.endpoint, index, host))
        self._replay: zmq.Socket[bytes] | None = None
        self.replay_endpoint: str | None = None
        if config.replay_endpoint is not None:
            self._replay = self._context.socket(zmq.ROUTER)
            self._replay.setsockopt(zmq.LINGER, 0)
            endpoint = offset_endpoint(config.replay_endpoint, index, host)
            self._replay.bind(endpoint)
            self.replay_endpoint = _last_endpoint(self._replay)

    @staticmethod
    def _open(socket: zmq.Socket[bytes], endpoint: str) -> str:
        """Bind a local address (as vLLM binds `*`); connect to a remote one (as vLLM does)."""
        if endpoint.startswith("tcp://") and not _is_local(endpoint):
            socket.connect(endpoint)
            return endpoint
        socket.bind(endpoint)
        return _last_endpoint(socket)

    def start(self) -> None:
        """Start answering replay requests (needs a running event loop)."""
        if self._replay is not None and self._replay_task is None:
            self._replay_task = asyncio.get_running_loop().create_task(self._serve_replay())

    def publish(self, events: Sequence[BlockStored | BlockRemoved | AllBlocksCleared]) -> None:
        """Send one step's events as the next batch."""
        payload = self._encoder.encode(
            KVEventBatch(ts=time.time(), events=list(events), data_parallel_rank=0)
        )
        seq = self._seq
        self._seq += 1
        with contextlib.suppress(zmq.Again):  # over the high-water mark: dropped, as in ZMQ
            self._pub.send_multipart((self._topic, seq.to_bytes(8, "big"), payload), zmq.NOBLOCK)
        self._buffer.append((seq, payload))

    async def _serve_replay(self) -> None:
        replay = self._replay
        assert replay is not None
        while True:
            while replay.poll(0):
                frames = replay.recv_multipart()
                if len(frames) != 3:
                    continue
                client, _, start = frames
                first = int.from_bytes(start, "big")
                for seq, payload in list(self._buffer):
                    if seq >= first:
                        replay.send_multipart(
                            (client, b"", self._topic, seq.to_bytes(8, "big"), payload)
                        )
                replay.send_multipart((client, b"", b"", END_OF_REPLAY, b""))
            await asyncio.sleep(_REPLAY_POLL_S)

    async def close(self) -> None:
        task, self._replay_task = self._replay_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pub.close()
        if self._replay is not None:
            self._replay.close()
        self._context.term()


def _last_endpoint(socket: zmq.Socket[bytes]) -> str:
    endpoint = socket.getsockopt(zmq.LAST_ENDPOINT)
    return endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)


def _is_local(endpoint: str) -> bool:
    host = endpoint.removeprefix("tcp://").rpartition(":")[0].strip("[]")
    return host in ("*", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost")
