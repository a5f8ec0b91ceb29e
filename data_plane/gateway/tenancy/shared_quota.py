"""Per-tenant quotas in Redis, shared by every gateway replica (and kept across restarts).

The same rules as `quota.QuotaBook`, made atomic by two Lua scripts that read Redis' own
clock (replicas need not agree on the time). Per tenant:

    hoist:tenant:{name}:requests   sorted set: one member per admitted request, score = ms
    hoist:tenant:{name}:tokens     sorted set: `id:count` members, score = ms
    hoist:tenant:{name}:inflight   sorted set: requests in flight, score = start ms; a
                                   member older than the lease (a crashed replica's) expires

When Redis cannot be reached the gateway falls back to its in-process book (logged), so
an outage degrades quotas to per-replica instead of refusing every request.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from data_plane.gateway.tenancy.policy import TenantPolicy
from data_plane.gateway.tenancy.quota import WINDOW_S, QuotaBook, Refusal

log = logging.getLogger("hoist.gateway.tenancy")

_LEASE_MS = 15 * 60 * 1000

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
    def __init__(self, url: str, fallback: QuotaBook, timeout_s: float = 0.5) -> None:
        self._redis: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._admit = self._redis.register_script(_ADMIT)
        self._finish = self._redis.register_script(_FINISH)
        self._fallback = fallback
        self._prefix = os.urandom(6).hex()
        self._count = 0
        self._degraded = False

    def new_id(self) -> str:
        self._count += 1
        return f"{self._prefix}-{self._count}"

    async def admit(
        self, policy: TenantPolicy, request_id: str, now: float
    ) -> tuple[Refusal | None, bool]:
        """The refusal (None: admitted) and whether Redis decided (False: this process)."""
        args: list[str | int] = [
            int(WINDOW_S * 1000),
            policy.requests_per_minute or 0,
            policy.tokens_per_minute or 0,
            policy.concurrent_requests or 0,
            request_id,
            _LEASE_MS,
        ]
        try:
            code, wait_ms = await self._admit(keys=_keys(policy.name), args=args)
        except (RedisError, OSError) as exc:
            self._fell_back(exc)
            return self._fallback.admit(policy, now), False
        self._recovered()
        if int(code) == 0:
            return None, True
        return Refusal(_REASONS[int(code)], max(0.001, int(wait_ms) / 1000)), True

    async def finish(self, tenant: str, request_id: str, tokens: int, now: float) -> None:
        try:
            await self._finish(
                keys=_keys(tenant), args=[request_id, max(0, tokens), int(WINDOW_S * 1000)]
            )
        except (RedisError, OSError) as exc:
            self._fell_back(exc)  # its slot in Redis expires with the lease

    def _fell_back(self, exc: BaseException) -> None:
        if not self._degraded:
            log.warning("quota counters unavailable, counting in this replica: %s", exc)
        self._degraded = True

    def _recovered(self) -> None:
        if self._degraded:
            log.warning("quota counters reachable again")
        self._degraded = False

    async def close(self) -> None:
        await self._redis.aclose()
