"""Fair shares and per-replica caps shared by every gateway process, through Redis.

Each process keeps deciding on its own live counts, on the request path, with no Redis
call there. Beside it, this loop runs every `interval_s` (one Lua call, one round trip):

    HSET  hoist:{admission}:reports  <process id>  <its report (share_view.py)>
    ZADD  hoist:{admission}:leases   <now + lease>  <process id>
    drop the reports whose lease ran out (a process that died), return the others

and sums the others' reports per model into each `Shares.peers` and each replica's
`cap_left` (the per-replica cap less the others' requests there). So a tenant's share,
the reserve and the cap are those of the whole fleet of gateways, as of the others' last
reports: at most `interval_s` plus one call old. Within that window two processes may
both fill the same free slots (the overshoot is bounded by the slots free at the last
sync, and lasts while those requests run).

Redis down, frozen or slow: each call is bounded by `timeout_s`; a failure drops the view
at once (each process decides alone, as without Redis: the static per-worker cap, its
own tenants) and feeds a circuit breaker (`breaker.py`) that spaces the retries; the
first sync that succeeds again restores the view. `gateway_share_sync_up` and a log
line tell each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from data_plane.gateway.fleet import Fleet
from data_plane.gateway.settings import GatewaySettings
from data_plane.gateway.tenancy.breaker import BreakerPolicy, CircuitBreaker
from data_plane.gateway.tenancy.fair_queue import FairWakeups
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.share_view import (
    ALONE,
    ModelReport,
    PeerView,
    cap_left,
    decode,
    encode,
    merge,
)
from data_plane.gateway.tenancy.shares import Shares

log = logging.getLogger("hoist.gateway.tenancy")

REPORTS = "hoist:{admission}:reports"
LEASES = "hoist:{admission}:leases"
"""One hash slot for both (Redis Cluster)."""

_SYNC = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 4)
redis.call('PEXPIRE', KEYS[2], lease * 4)
return redis.call('HGETALL', KEYS[1])
"""


class SharedShares:
    """The sync loop of one gateway process (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        fleet: Fleet,
        shares: Mapping[str, Shares],
        wakeups: Mapping[str, FairWakeups],
        per_replica_cap: int,
        metrics: TenantMetrics,
        interval_s: float = 0.05,
        lease_s: float = 2.0,
        timeout_s: float = 0.25,
        breaker: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`shares`, `wakeups`: the gateway's own maps (read live, per model);
        `per_replica_cap`: the cap across all processes (0: none)."""
        self._redis: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._sync = self._redis.register_script(_SYNC)
        self._fleet, self._shares, self._wakeups = fleet, shares, wakeups
        self._cap = per_replica_cap
        self._metrics = metrics
        self.interval_s, self.lease_s, self.timeout_s = interval_s, lease_s, timeout_s
        self.breaker = CircuitBreaker(breaker)
        self._clock = clock
        self.process_id = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.shared = False
        """Whether the last sync succeeded (decisions use the others' numbers)."""
        self._told_alone = False
        self._task: asyncio.Task[None] | None = None
        metrics.share_sync_up(False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gateway-share-sync")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.shared:  # leave at once rather than at the lease's end
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    await self._redis.hdel(REPORTS, self.process_id)
                    await self._redis.zrem(LEASES, self.process_id)
        await self._redis.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync_once()
            except Exception:  # a bug must not leave a stale view in force
                log.exception("share sync failed; deciding alone until the next one")
                self.shared = False
                self._metrics.share_sync_up(False)
                self.alone()
            await asyncio.sleep(self.interval_s)

    async def sync_once(self) -> bool:
        """Publish this process's numbers and apply the others'; False: deciding alone."""
        if not self.breaker.allow(self._clock()):
            return False
        report = encode(self.report())
        lease_ms = max(1, int(self.lease_s * 1000))
        try:
            async with asyncio.timeout(self.timeout_s):
                flat = await self._sync(
                    keys=[REPORTS, LEASES], args=[self.process_id, report, lease_ms]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return False
        own = self.process_id.encode()
        others = [decode(flat[i + 1]) for i in range(0, len(flat), 2) if flat[i] != own]
        reports = [r for r in others if r is not None]
        self._metrics.share_peers(len(reports))
        self.apply(merge(reports))
        self.breaker.succeeded()
        if not self.shared:  # a warning when it comes back, news otherwise
            (log.warning if self._told_alone else log.info)(
                "shared admission state in use: fair shares and per-replica caps count %d"
                " other gateway processes",
                len(reports),
            )
        self.shared = True
        self._told_alone = False
        self._metrics.share_sync_up(True)
        return True

    def report(self) -> dict[str, ModelReport]:
        """This process's numbers per model (live counts, no peers')."""
        now = asyncio.get_running_loop().time()
        out: dict[str, ModelReport] = {}
        for name, route in self._fleet.models.items():
            shares = self._shares.get(name)
            tenants = shares.loads(now) if shares is not None else {}
            replicas = {r.name: r.in_flight for r in route.replicas if r.in_flight > 0}
            if tenants or replicas:
                out[name] = ModelReport(tenants, replicas)
        return out

    def apply(self, peers: Mapping[str, ModelReport]) -> None:
        """Decide on `peers` (summed per model) from now on; wake waiters that now fit."""
        for name, route in self._fleet.models.items():
            theirs = peers.get(name, ModelReport())
            freed = 0
            for replica in route.replicas:
                if self._cap <= 0:
                    replica.cap_left = None
                    continue
                before = replica.cap_left
                replica.cap_left = cap_left(self._cap, theirs.replicas.get(replica.name, 0))
                if before is None or replica.cap_left > before:
                    freed += max(0, replica.cap_left - replica.in_flight)
            shares = self._shares.get(name)
            if shares is not None:
                ready = sum(1 for r in route.replicas if r.ready)
                shares.peers = PeerView(theirs.tenants, theirs.replicas, self._cap * ready)
            wakeups = self._wakeups.get(name)
            while wakeups and freed > 0 and wakeups.notify():  # they fit only on our sync
                freed -= 1

    def alone(self) -> None:
        """Forget the others' numbers: each process decides on its own counts."""
        for name, route in self._fleet.models.items():
            for replica in route.replicas:
                replica.cap_left = None
            shares = self._shares.get(name)
            if shares is not None:
                shares.peers = ALONE

    def _failed(self, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, TimeoutError | RedisTimeoutError) else "error"
        self._metrics.share_sync_error(kind)
        self.breaker.failed(self._clock())
        if not self._told_alone:
            self._told_alone = True
            log.warning(
                "shared admission state unavailable (%s: %s): this gateway process decides"
                " fair shares and per-replica caps alone until Redis answers again",
                kind,
                exc or type(exc).__name__,
            )
        self.shared = False
        self._metrics.share_sync_up(False)
        self.alone()


def from_settings(
    settings: GatewaySettings,
    fleet: Fleet,
    shares: Mapping[str, Shares],
    wakeups: Mapping[str, FairWakeups],
    metrics: TenantMetrics,
) -> SharedShares | None:
    """The gateway's sync (None without `tenant_redis_url`, or with the interval 0)."""
    if settings.tenant_redis_url is None or settings.tenant_share_sync_interval_s <= 0:
        return None
    return SharedShares(
        settings.tenant_redis_url,
        fleet=fleet,
        shares=shares,
        wakeups=wakeups,
        per_replica_cap=settings.per_replica_max_in_flight,
        metrics=metrics,
        interval_s=settings.tenant_share_sync_interval_s,
        lease_s=settings.tenant_share_lease_s,
        timeout_s=settings.tenant_redis_timeout_s,
    )
