"""Per-tenant quotas in Redis, shared by every gateway replica (and kept across restarts).

The same rules as `quota.QuotaBook`, made atomic by two Lua scripts that read Redis' own
clock (replicas need not agree on the time). Per tenant:

    hoist:tenant:{name}:requests   sorted set: one member per admitted request, score = ms
    hoist:tenant:{name}:tokens     sorted set: `id:count` members, score = ms
    hoist:tenant:{name}:inflight   sorted set: requests in flight, score = start ms; a
                                   member older than the lease (a crashed replica's) expires

Outages (docs/reliability.md, "Control plane"): every call is bounded by `timeout_s`
(connect, read, and the whole call); errors and timeouts feed a circuit breaker
(`breaker.py`) which, once open, skips Redis altogether until a trial call succeeds. While
Redis is not used, each tenant's `quotas.onStoreOutage` decides: FailOpen (the default)
counts in this process's book (quotas become per replica), FailClosed refuses with 503.
Finishes that could not be written are kept (bounded) and replayed on recovery, so the
in-flight slots of requests admitted before the outage do not linger until their lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from data_plane.gateway.tenancy.breaker import BreakerPolicy, CircuitBreaker
from data_plane.gateway.tenancy.errors import QuotaStoreUnavailableError
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.policy import TenantPolicy
from data_plane.gateway.tenancy.quota import WINDOW_S, QuotaBook, Refusal

log = logging.getLogger("hoist.gateway.tenancy")

_LEASE_MS = 15 * 60 * 1000
_PENDING_FINISHES = 10_000
"""Finishes kept for replay while Redis is down (beyond: their slots expire by lease)."""

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[1])
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[6]))
if conc > 0 and redis.call('ZCARD', KEYS[3]) >= conc then
  return {1, 1000}
end
if rpm > 0 then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local at = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return {2, tonumber(at[2]) + win - now}
  end
end
if tpm > 0 then
  local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local total = 0
  for i = 1, #entries, 2 do
    total = total + tonumber(string.match(entries[i], ':(%d+)$'))
  end
  if total >= tpm then
    local excess = total - tpm + 1
    for i = 1, #entries, 2 do
      excess = excess - tonumber(string.match(entries[i], ':(%d+)$'))
      if excess <= 0 then
        return {3, tonumber(entries[i + 1]) + win - now}
      end
    end
    return {3, win}
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZADD', KEYS[3], now, ARGV[5])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], math.max(win, tonumber(ARGV[6])) * 2) end
return {0, 0}
"""

_FINISH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[3], ARGV[1])
local n = tonumber(ARGV[2])
if n > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. n)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 2)
end
return 0
"""

_REASONS = {1: "concurrent_requests", 2: "requests_per_minute", 3: "tokens_per_minute"}


def _keys(tenant: str) -> list[str]:
    base = f"hoist:tenant:{{{tenant}}}"  # one hash slot per tenant (Redis Cluster)
    return [f"{base}:requests", f"{base}:tokens", f"{base}:inflight"]


class SharedQuotaBook:
    def __init__(
        self,
        url: str,
        fallback: QuotaBook,
        *,
        metrics: TenantMetrics | None = None,
        timeout_s: float = 0.25,
        breaker: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._admit = self._redis.register_script(_ADMIT)
        self._finish = self._redis.register_script(_FINISH)
        self._fallback = fallback
        self._metrics = metrics
        self.timeout_s = timeout_s
        self.breaker = CircuitBreaker(breaker)
        self._clock = clock
        self._prefix = os.urandom(6).hex()
        self._count = 0
        self._pending: deque[tuple[str, str, int]] = deque(maxlen=_PENDING_FINISHES)
        self._replay: asyncio.Task[None] | None = None

    def new_id(self) -> str:
        self._count += 1
        return f"{self._prefix}-{self._count}"

    async def admit(
        self, policy: TenantPolicy, request_id: str, now: float
    ) -> tuple[Refusal | None, bool]:
        """The refusal (None: admitted) and whether Redis decided (False: this process).

        Raises `QuotaStoreUnavailableError` when Redis is not usable and the tenant's
        quotas fail closed."""
        args: list[str | int] = [
            int(WINDOW_S * 1000),
            policy.requests_per_minute or 0,
            policy.tokens_per_minute or 0,
            policy.concurrent_requests or 0,
            request_id,
            _LEASE_MS,
        ]
        if self.breaker.allow(self._clock()):
            try:
                async with asyncio.timeout(self.timeout_s):
                    code, wait_ms = await self._admit(keys=_keys(policy.name), args=args)
            except (RedisError, OSError, TimeoutError) as exc:
                # A timed-out admit may still run (a frozen Redis works through its backlog
                # when it wakes): free its in-flight slot with the finishes replayed then.
                self._pending.append((policy.name, request_id, 0))
                self._failed(exc)
            else:
                self._succeeded()
                if int(code) == 0:
                    return None, True
                return Refusal(_REASONS[int(code)], max(0.001, int(wait_ms) / 1000)), True
        return self._without_store(policy, now), False

    def _without_store(self, policy: TenantPolicy, now: float) -> Refusal | None:
        if policy.fail_closed:
            if self._metrics is not None:
                self._metrics.store_bypassed(policy.name, "fail_closed")
            retry = max(1.0, self.breaker.retry_in(self._clock()))
            raise QuotaStoreUnavailableError(
                "The quota service is unavailable and this tenant's quotas fail closed;"
                " retry after the time in Retry-After.",
                retry_after_s=retry,
            )
        if self._metrics is not None:
            self._metrics.store_bypassed(policy.name, "fail_open")
        return self._fallback.admit(policy, now)

    async def finish(self, tenant: str, request_id: str, tokens: int, now: float) -> None:
        if not self.breaker.allow(self._clock()):
            self._pending.append((tenant, request_id, tokens))
            return
        try:
            await self._write_finish(tenant, request_id, tokens)
        except (RedisError, OSError, TimeoutError) as exc:
            self._pending.append((tenant, request_id, tokens))
            self._failed(exc)
        else:
            self._succeeded()

    async def _write_finish(self, tenant: str, request_id: str, tokens: int) -> None:
        async with asyncio.timeout(self.timeout_s):
            await self._finish(
                keys=_keys(tenant), args=[request_id, max(0, tokens), int(WINDOW_S * 1000)]
            )

    def _failed(self, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, TimeoutError | RedisTimeoutError) else "error"
        if self._metrics is not None:
            self._metrics.store_error(kind)
        if self.breaker.failed(self._clock()):
            log.warning(
                "quota counters unavailable (%s: %s): FailOpen tenants are counted in this"
                " replica, FailClosed ones refused; next try in %.0f s",
                kind,
                exc or type(exc).__name__,
                self.breaker.retry_in(self._clock()),
            )
            if self._metrics is not None:
                self._metrics.store_up(False)

    def _succeeded(self) -> None:
        if not self.breaker.succeeded():
            return
        log.warning("quota store reachable again; replaying %d finishes", len(self._pending))
        if self._metrics is not None:
            self._metrics.store_up(True)
        if self._pending and (self._replay is None or self._replay.done()):
            self._replay = asyncio.create_task(self._replay_finishes(), name="quota-replay")

    async def _replay_finishes(self) -> None:
        while self._pending:
            tenant, request_id, tokens = self._pending.popleft()
            try:
                await self._write_finish(tenant, request_id, tokens)
            except (RedisError, OSError, TimeoutError) as exc:
                self._pending.appendleft((tenant, request_id, tokens))
                self._failed(exc)
                return

    @property
    def pending_finishes(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            await asyncio.gather(self._replay, return_exceptions=True)
        await self._redis.aclose()
