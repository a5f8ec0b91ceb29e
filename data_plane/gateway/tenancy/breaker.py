"""A circuit breaker for the quota store (pure: the caller passes the time).

    closed  --`failures` errors in a row-->  open  --`open_s` later-->  half-open
    half-open: one trial call; success -> closed, error -> open again (twice as long,
    up to `max_open_s`)

While open, callers skip Redis altogether, so a down or frozen Redis costs a request
nothing instead of a socket timeout each; the trial call finds out when it is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 3
    """Errors (or timeouts) in a row that open the breaker."""
    open_s: float = 2.0
    """How long it stays open before one trial call is let through."""
    max_open_s: float = 30.0
    """Cap of the open time, which doubles after each failed trial."""


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self.state = BreakerState.CLOSED
        self._errors = 0
        self._open_for = self.policy.open_s
        self._opened_at = 0.0
        self._trial_out = False

    def allow(self, now: float) -> bool:
        """Whether to call the store now (in half-open: only the one trial call)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and now - self._opened_at >= self._open_for:
            self.state = BreakerState.HALF_OPEN
            self._trial_out = False
        if self.state is BreakerState.HALF_OPEN and not self._trial_out:
            self._trial_out = True
            return True
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until the next trial call (0 when closed)."""
        if self.state is BreakerState.CLOSED:
            return 0.0
        return max(0.0, self._opened_at + self._open_for - now)

    def succeeded(self) -> bool:
        """Record a successful call; True when this closed an open breaker (recovery)."""
        recovered = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self._errors = 0
        self._open_for = self.policy.open_s
        self._trial_out = False
        return recovered

    def failed(self, now: float) -> bool:
        """Record a failed call; True when this opened the breaker."""
        if self.state is BreakerState.HALF_OPEN:
            self._open_for = min(self.policy.max_open_s, self._open_for * 2)
            self._open(now)
            return False
        self._errors += 1
        if self.state is BreakerState.CLOSED and self._errors >= self.policy.failures:
            self._open(now)
            return True
        return False

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = now
        self._trial_out = False
