"""Reads of the discovery source, one at a time, and a fresh one for a request that missed.

Each gateway worker (and each replica) learns its fleet on its own read of the discovery
source, so for up to one interval after a Model or adapter is added, some workers would
answer 404 for it while others route it, and a client sees it come and go between
connections. Instead, a request that names a model this worker does not know waits for a
read that *began after the request arrived*, and is answered from that view: a 404 then
means the source did not know the name either.

Reads are serialized, so their views apply in the order they were taken (a slow old read
can never undo a newer one). Requests that miss meanwhile share one read, and reads for
misses begin at most once per `spacing_s`: a flood of unknown names costs the source at
most `1 / spacing_s` reads a second per worker, and each such request waits at most
`spacing_s` plus two reads (the one under way when it came, and its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

log = logging.getLogger("hoist.gateway.discovery")


class DiscoveryReads:
    def __init__(
        self,
        read: Callable[[], Awaitable[bool]],
        clock: Callable[[], float],
        spacing_s: float,
    ) -> None:
        self._read = read
        self._clock = clock
        self._spacing_s = spacing_s
        self._lock = asyncio.Lock()
        self._fresh: asyncio.Task[None] | None = None
        self._fresh_began = -math.inf
        self.last_began = -math.inf
        """When the last finished read began (by `clock`); every earlier read has finished."""

    async def read(self) -> bool:
        """Read the source once, after any read in progress; what `read` returned."""
        async with self._lock:
            began = self._clock()
            try:
                return await self._read()
            finally:
                self.last_began = began

    async def since(self, arrived: float) -> None:
        """Return once a read that began at or after `arrived` has finished.

        Cancelling the caller leaves the shared read running for the others."""
        while self.last_began < arrived:
            if self._fresh is None:
                self._fresh = asyncio.create_task(self._spaced(), name="gateway-discovery-miss")
            await asyncio.shield(self._fresh)

    async def close(self) -> None:
        """Cancel the read for misses, if one runs (the gateway stops)."""
        fresh = self._fresh
        if fresh is not None:
            fresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fresh

    async def _spaced(self) -> None:
        try:
            wait = self._fresh_began + self._spacing_s - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._fresh_began = self._clock()
            await self.read()
        except Exception:  # the waiters answer from the view they have
            log.exception("discovery read for an unknown model failed")
        finally:
            self._fresh = None
