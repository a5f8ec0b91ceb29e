"""Weighted fair queuing of the requests that wait for a replica (asyncio, no I/O).

A drop-in for `limits.Wakeups`: each waiter belongs to a flow (a tenant) with a weight.
Start-time fair queuing: a waiter's tag is `max(virtual time, its flow's last tag) +
1 / weight`; `notify` wakes the smallest tag and moves the virtual time to it. With one
flow this is first come, first served; with several, a flow that queues ten times as
many requests still gets only its weighted share of the freed slots.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

DEFAULT_FLOW = ""


@dataclass(order=True, slots=True)
class _Waiter:
    tag: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class FairWakeups:
    def __init__(self) -> None:
        self._heap: list[_Waiter] = []
        self._last: dict[str, float] = {}
        self._vtime = 0.0
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    async def wait(self, timeout_s: float, flow: str = DEFAULT_FLOW, weight: int = 1) -> bool:
        """True when woken; False on timeout."""
        if timeout_s <= 0:
            return False
        tag = max(self._vtime, self._last.get(flow, 0.0)) + 1.0 / max(1, weight)
        self._last[flow] = tag
        waiter = _Waiter(tag, next(self._seq), asyncio.get_running_loop().create_future())
        heapq.heappush(self._heap, waiter)
        self._live += 1
        try:
            async with asyncio.timeout(timeout_s):
                await waiter.future
            return True
        except TimeoutError:
            return waiter.future.done() and not waiter.future.cancelled()
        finally:
            future = waiter.future
            if not future.done() or future.cancelled():  # not woken: skipped by notify
                future.cancel()
                self._live -= 1
                self._idle()

    def notify(self) -> None:
        while self._heap:
            waiter = heapq.heappop(self._heap)
            if not waiter.future.done():
                self._vtime = waiter.tag
                self._live -= 1
                waiter.future.set_result(None)
                self._idle()
                return

    def _idle(self) -> None:
        """Nobody waits: start every flow afresh (old tags would be held against it)."""
        if self._live == 0:
            self._heap.clear()
            self._last.clear()
            self._vtime = 0.0
