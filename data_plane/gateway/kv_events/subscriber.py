"""Follow one replica's KV-cache events into the index (the I/O shell around it).

A ZMQ SUB socket connects to the replica's event endpoint, subscribes to the topic and
applies every batch `(topic, seq, payload)` to the `KvBlockIndex` under the replica's
name; the index handles gaps (sequence numbers). ZMQ reconnects by itself when the engine
restarts; the sequence number then starts over, which the index treats as a gap. A batch
that does not decode is logged and makes the index forget the replica (it can no longer
trust what it knows). Cancelling the task closes the socket.
"""

from __future__ import annotations

import logging

import msgspec
import zmq
import zmq.asyncio

from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.wire import batch_decoder, sequence_number

log = logging.getLogger(__name__)


async def follow_replica(
    context: zmq.asyncio.Context,
    index: KvBlockIndex,
    replica: str,
    endpoint: str,
    topic: str = "",
) -> None:
    """Apply the replica's event batches to `index` until cancelled."""
    decoder = batch_decoder()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVHWM, 100_000)
    socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
    try:
        socket.connect(endpoint)
        while True:
            frames = await socket.recv_multipart()
            if len(frames) != 3:
                log.warning("kv events from %s: a message of %d frames", replica, len(frames))
                continue
            _, seq, payload = frames
            try:
                batch = decoder.decode(payload)
            except msgspec.DecodeError as exc:
                log.warning("kv events from %s do not decode (%s); forgetting it", replica, exc)
                index.forget(replica)
                continue
            index.apply(replica, sequence_number(seq), batch.events)
    finally:
        socket.close()
