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


class Shares:
    """Headroom for tenants under their share of a saturated model (pure bookkeeping).

    Fair queuing alone does not preempt: a quiet tenant still waits for the next slot to
    free while a noisy one holds them all. So, while several tenants are active (a
    request within `window_s`), a tenant at or above its weighted share of the model's
    slots may take a slot only while `reserve` of them stay free for the others.
    """

    def __init__(self, reserve_fraction: float, window_s: float = 10.0) -> None:
        self.reserve_fraction = reserve_fraction
        self.window_s = window_s
        self._in_flight: dict[str, int] = {}
        self._seen: dict[str, tuple[float, int]] = {}

    def seen(self, tenant: str, weight: int, now: float) -> None:
        self._seen[tenant] = (now, weight)

    def may_take(self, tenant: str, used: int, capacity: int, now: float) -> bool:
        """May `tenant` take a free slot, with `used` of the model's `capacity` in use?"""
        if self.reserve_fraction <= 0 or capacity <= 0:
            return True
        active = {
            t: w
            for t, (at, w) in self._seen.items()
            if now - at <= self.window_s or self._in_flight.get(t, 0) > 0
        }
        if len(active) < 2 or tenant not in active:
            return True
        share = capacity * active[tenant] / sum(active.values())
        if self._in_flight.get(tenant, 0) < share:
            return True
        reserve = max(1, int(capacity * self.reserve_fraction))
        return used < capacity - reserve

    def took(self, tenant: str) -> None:
        self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1

    def released(self, tenant: str) -> None:
        left = self._in_flight.get(tenant, 0) - 1
        if left > 0:
            self._in_flight[tenant] = left
        else:
            self._in_flight.pop(tenant, None)
