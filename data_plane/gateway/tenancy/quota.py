"""Per-tenant quotas over a rolling minute, in this process (pure: time is passed in).

Requests per minute and tokens per minute use a sliding log of (time, amount); concurrent
requests a counter. `check` says how long to wait before a request would be admitted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from data_plane.gateway.tenancy.policy import TenantPolicy

WINDOW_S = 60.0


@dataclass(slots=True)
class _Log:
    entries: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def trim(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - WINDOW_S:
            _, amount = self.entries.popleft()
            self.total -= amount

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self.entries.append((now, amount))
            self.total += amount

    def wait_until_below(self, limit: int, now: float) -> float:
        """Seconds until the total drops below `limit` (0 when it already is)."""
        excess = self.total - limit + 1
        if excess <= 0:
            return 0.0
        for at, amount in self.entries:
            excess -= amount
            if excess <= 0:
                return max(0.001, at + WINDOW_S - now)
        return WINDOW_S


@dataclass(slots=True)
class _Usage:
    requests: _Log = field(default_factory=_Log)
    tokens: _Log = field(default_factory=_Log)
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    """`requests_per_minute`, `tokens_per_minute` or `concurrent_requests`."""
    retry_after_s: float


class QuotaBook:
    def __init__(self) -> None:
        self._usage: dict[str, _Usage] = {}

    def _of(self, tenant: str) -> _Usage:
        usage = self._usage.get(tenant)
        if usage is None:
            usage = self._usage[tenant] = _Usage()
        return usage

    def admit(self, policy: TenantPolicy, now: float) -> Refusal | None:
        """Count a request in (None), or say why not and for how long."""
        usage = self._of(policy.name)
        usage.requests.trim(now)
        usage.tokens.trim(now)
        if policy.concurrent_requests is not None and usage.in_flight >= policy.concurrent_requests:
            return Refusal("concurrent_requests", 1.0)
        if policy.requests_per_minute is not None:
            wait = usage.requests.wait_until_below(policy.requests_per_minute, now)
            if wait > 0:
                return Refusal("requests_per_minute", wait)
        if policy.tokens_per_minute is not None:
            # Admitted while under the limit; the answer's tokens may overshoot it once.
            wait = usage.tokens.wait_until_below(policy.tokens_per_minute, now)
            if wait > 0:
                return Refusal("tokens_per_minute", wait)
        usage.requests.add(now, 1)
        usage.in_flight += 1
        return None

    def finish(self, tenant: str, tokens: int, now: float) -> None:
        usage = self._of(tenant)
        usage.in_flight = max(0, usage.in_flight - 1)
        usage.tokens.add(now, tokens)

    def in_flight(self, tenant: str) -> int:
        return self._of(tenant).in_flight

    def tokens(self, tenant: str, now: float) -> int:
        usage = self._of(tenant)
        usage.tokens.trim(now)
        return usage.tokens.total
