"""Weighted fair queuing of the requests that wait for a replica (asyncio, no I/O).

A drop-in for `limits.Wakeups`: each waiter belongs to a flow (a tenant) with a weight.
Start-time fair queuing: a waiter's tag is `max(virtual time, its flow's last tag) +
1 / weight`; `notify` wakes the smallest tag and moves the virtual time to it. With one
flow this is first come, first served; with several, a flow that queues ten times as
many requests still gets only its weighted share of the freed slots.

A waiter may bring an `admits` check: whether it could take the slot that was just freed
(a request for an adapter cannot use a replica without it; a tenant over its share must
leave the reserve to others). `notify` skips waiters whose check fails, so a freed slot
goes to the first waiter in fair order that can use it instead of waking one that would
only go back to sleep while the slot stays empty.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_FLOW = ""

SCAN_LIMIT = 32
"""Waiters of one flow looked at per `notify` (bounds its cost under a long queue)."""

Admits = Callable[[], bool]


@dataclass(eq=False, slots=True)
class _Waiter:
    tag: float
    seq: int
    future: asyncio.Future[None]
    admits: Admits | None


class FairWakeups:
    def __init__(self) -> None:
        self._flows: dict[str, deque[_Waiter]] = {}
        """Each flow's waiters in arrival order (their tags increase)."""
        self._last: dict[str, float] = {}
        self._vtime = 0.0
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    async def wait(
        self,
        timeout_s: float,
        flow: str = DEFAULT_FLOW,
        weight: int = 1,
        admits: Admits | None = None,
    ) -> bool:
        """True when woken; False on timeout. `admits`: see the module's docstring."""
        if timeout_s <= 0:
            return False
        tag = max(self._vtime, self._last.get(flow, 0.0)) + 1.0 / max(1, weight)
        self._last[flow] = tag
        waiter = _Waiter(tag, next(self._seq), asyncio.get_running_loop().create_future(), admits)
        self._flows.setdefault(flow, deque()).append(waiter)
        self._live += 1
        try:
            async with asyncio.timeout(timeout_s):
                await waiter.future
            return True
        except TimeoutError:
            return waiter.future.done() and not waiter.future.cancelled()
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.notify()  # woken, then cancelled before it ran: wake the next in line
            raise
        finally:
            future = waiter.future
            if not future.done() or future.cancelled():  # not woken: skipped by notify
                future.cancel()
                self._live -= 1
                self._idle()

    def notify(self) -> bool:
        """Wake the waiter with the smallest tag that admits the freed slot; False when
        none does (the slot stays free for whoever asks next)."""
        best: _Waiter | None = None
        best_queue: deque[_Waiter] | None = None
        for flow, queue in list(self._flows.items()):
            while queue and queue[0].future.done():
                queue.popleft()
            if not queue:
                del self._flows[flow]
                continue
            for waiter in itertools.islice(queue, SCAN_LIMIT):
                if best is not None and (waiter.tag, waiter.seq) >= (best.tag, best.seq):
                    break  # this flow cannot beat the best found so far
                if waiter.future.done():
                    continue
                if waiter.admits is None or waiter.admits():
                    best, best_queue = waiter, queue
                    break
        if best is None or best_queue is None:
            return False
        best_queue.remove(best)
        self._vtime = best.tag
        self._live -= 1
        best.future.set_result(None)
        self._idle()
        return True

    def _idle(self) -> None:
        """Nobody waits: start every flow afresh (old tags would be held against it)."""
        if self._live == 0:
            self._flows.clear()
            self._last.clear()
            self._vtime = 0.0
