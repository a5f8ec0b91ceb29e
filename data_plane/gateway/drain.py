"""Graceful drain: what the gateway does between SIGTERM and its exit.

1. At once: `/readyz` answers 503 (`draining`), so a load balancer or Kubernetes takes the
   gateway out of its endpoints; the gateway still accepts and serves, and every answer
   carries `Connection: close`, so keep-alive clients move to a fresh connection (to a
   gateway that is not draining, on Kubernetes or beside it with `reuse_port`).
2. After `drain_delay_s`: it stops accepting and closes idle connections (uvicorn's
   shutdown), then lets requests and streams in flight finish for up to `drain_grace_s`.
   Half a second before that ends, streams still running end with an SSE error event (as
   when their engine fails); whatever is still running then is cancelled, and the process
   exits.

A second SIGTERM or SIGINT skips the delay; uvicorn's own rule (a second SIGINT) forces
the exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from data_plane.gateway.runtime import Gateway

log = logging.getLogger("hoist.gateway.drain")

_END_STREAMS_EARLY_S = 0.5
"""Before the grace period ends, streams in flight end with an error event (uvicorn then
cancels what is left, which would cut a stream without one)."""


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_at: asyncio.TimerHandle | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig not in (signal.SIGTERM, signal.SIGINT) or self.should_exit or self._loop is None:
            super().handle_exit(sig, frame)
            return
        if self.gateway.draining:  # a second signal: stop waiting for the load balancer
            self.should_exit = True
            return
        self.gateway.draining = True
        delay = self.gateway.settings.drain_delay_s
        log.warning(
            "draining: /readyz fails now; accepting for %g s more, then up to %g s for the "
            "requests in flight",
            delay,
            self.gateway.settings.drain_grace_s,
        )
        self._loop.call_soon_threadsafe(self._schedule_stop, delay)

    def _schedule_stop(self, delay: float) -> None:
        assert self._loop is not None
        self._stop_at = self._loop.call_later(delay, self._stop)

    def _stop(self) -> None:
        log.warning("draining: no longer accepting; waiting for the requests in flight")
        self.should_exit = True
        assert self._loop is not None
        grace = self.gateway.settings.drain_grace_s
        self._loop.call_later(max(0.0, grace - _END_STREAMS_EARLY_S), self._end_streams)

    def _end_streams(self) -> None:
        """Streams still running at the end of the grace period get their error event."""
        ended = 0
        for replica in self.gateway.fleet.replicas():
            for attempt in list(replica.attempts):
                if attempt.silent_since() is not None:
                    attempt.abort("The gateway is shutting down; the stream was cut.")
                    ended += 1
        if ended:
            log.warning("draining: grace period over, %d streams ended", ended)


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound TCP socket, not listening yet: the server listens once the app has started,
    so that, beside a draining gateway on the same port (`reuse_port`), the kernel gives
    this one no connection before it can serve."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
