"""Callbacks for later, on one coarse timer: the hot path's way to say "if still needed".

Most requests are answered before their safety nets matter: the client-disconnect watch
(started only for a request still running after a few milliseconds) and the first-byte
deadline (only an attempt still waiting needs a timer). Each `loop.call_later` or
`asyncio.timeout(s)` starts and stops a timer in the event loop, 3-10 us a request in
uvloop; here every callback deferred in one tick shares one timer, and a cancelled one
costs a flag. A callback runs between `delay_s` and twice that after `defer`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("hoist.gateway")


class LateCall:
    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback: Callable[[], object] | None = callback

    def cancel(self) -> None:
        self.callback = None


class LateCalls:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._due: list[LateCall] = []
        """Deferred before the last tick: run at the next."""
        self._next: list[LateCall] = []
        """Deferred since the last tick."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def defer(self, callback: Callable[[], object], loop: asyncio.AbstractEventLoop) -> LateCall:
        """Run `callback` on `loop` (the running one) in `delay_s` to 2 x `delay_s`, unless
        the returned call is cancelled first."""
        call = LateCall(callback)
        if loop is not self._loop:  # first use, or a new loop (tests): nothing carries over
            self.close()
            self._loop = loop
        self._next.append(call)
        if self._timer is None:
            self._timer = loop.call_later(self.delay_s, self._tick)
        return call

    def _tick(self) -> None:
        due, self._due, self._next = self._due, self._next, []
        for call in due:
            callback = call.callback
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("a deferred call failed")
        loop = self._loop
        if (self._due or self._next) and loop is not None:
            self._timer = loop.call_later(self.delay_s, self._tick)
        else:
            self._timer = None  # idle: no timer until the next defer

    def close(self) -> None:
        """Drop every pending call (the gateway stops, or its loop changed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = []
        self._next = []
        self._loop = None

    @property
    def pending(self) -> int:
        return sum(c.callback is not None for c in (*self._due, *self._next))
