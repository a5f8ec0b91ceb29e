"""The gateway's watchdog: active health probes, the stall sweeper and latency outliers.

Two background loops, both off the hot path:

- `probe_loop`: every `health_probe_interval_s`, `GET health_probe_path` (with
  `health_probe_timeout_s`) on each ready replica that has neither answered a request nor
  sent a streamed byte since the last round (a replica serving traffic is evidently alive:
  probes cost nothing at a busy fleet's scale), and on every hung one.
  `health_probe_failures` failures in a row mark a replica hung (health.py): out of
  rotation, and every request in flight there is aborted (those before their first byte
  are retried elsewhere, started streams end with an SSE error event). A hung replica
  comes back as soon as a probe succeeds.
- `sweep_loop`: every `stall_sweep_interval_s`, one pass over the attempts in flight: one
  still waiting for its first byte past its deadline (liveness.py's first-byte timeout)
  is aborted (and retried elsewhere), as is a stream silent for longer than its replica's
  stall bound; then, per model, latency outliers (outliers.py) are ejected for the
  cool-down.

The proxy's only per-chunk cost is the timestamp the upstream connection stores on each
read (upstream_client.py); no timer per attempt, per stream or per chunk: a deadline is
met at most one sweep late.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import aiohttp

from data_plane.gateway.fleet import Replica
from data_plane.gateway.liveness import TimeoutPolicy, stall_timeout
from data_plane.gateway.outliers import OutlierPolicy, ReplicaLatency, latency_outliers

if TYPE_CHECKING:
    from data_plane.gateway.runtime import Gateway

log = logging.getLogger("hoist.gateway.watchdog")


def _alive_since(replica: Replica, since: float) -> bool:
    """It answered a request, or sent bytes of a stream, after `since`: no probe needed."""
    if replica.last_ok >= since:
        return True
    for attempt in replica.attempts:
        last = attempt.silent_since()
        if last is not None and last >= since:
            return True
    return False


class Watchdog:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        s = gateway.settings
        self.timeouts = TimeoutPolicy(
            first_byte_floor_s=s.first_byte_floor_s,
            first_byte_ceiling_s=s.first_byte_timeout_s,
            slack=s.timeout_slack,
            stall_floor_s=s.stall_floor_s,
            stall_factor=s.stall_factor,
            stall_ceiling_s=s.idle_timeout_s,
        )
        self.outliers = OutlierPolicy(
            factor=s.outlier_factor,
            min_gap_s=s.outlier_min_gap_s,
            min_samples=s.outlier_min_samples,
            max_ejected_fraction=s.outlier_max_ejected_fraction,
        )

    # --- active probes --------------------------------------------------------------------

    async def probe_loop(self) -> None:
        interval = self.gw.settings.health_probe_interval_s
        while True:
            await asyncio.sleep(interval)
            await self.probe_round()

    async def probe_round(self) -> None:
        now = asyncio.get_running_loop().time()
        since = now - self.gw.settings.health_probe_interval_s
        targets = [
            r
            for r in self.gw.fleet.replicas()
            if r.ready and (r.health.hung or not _alive_since(r, since))
        ]
        if not targets:
            return
        results = await asyncio.gather(*(self._probe(r) for r in targets))
        for replica, ok in zip(targets, results, strict=True):
            if not replica.retired:
                self.probed(replica, ok)

    async def _probe(self, replica: Replica) -> bool:
        settings = self.gw.settings
        limit = aiohttp.ClientTimeout(total=settings.health_probe_timeout_s)
        try:
            async with self.gw.session.get(
                replica.url + settings.health_probe_path, timeout=limit
            ) as resp:
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def probed(self, replica: Replica, ok: bool) -> None:
        gw = self.gw
        change = replica.health.record_probe(ok, gw.settings.health_probe_failures)
        if change is None:
            return
        if change:
            log.warning(
                "replica %s of %s is hung (%d probes failed): out of rotation, "
                "%d requests there aborted",
                replica.name,
                replica.model,
                gw.settings.health_probe_failures,
                len(replica.attempts),
            )
            gw.metrics.child(gw.metrics.ejections, replica.model, replica.name).inc()
            gw.metrics.child(gw.metrics.upstream_failures, replica.model, "hung").inc()
            for attempt in list(replica.attempts):
                attempt.abort("The model's replica stopped answering (hung).")
        else:
            log.warning("replica %s of %s answers again: back on probation", replica.name,
                        replica.model)  # fmt: skip
            replica.latency.reset()
        gw.update_replica_gauges()

    # --- stalls and outliers --------------------------------------------------------------

    async def sweep_loop(self) -> None:
        interval = self.gw.settings.stall_sweep_interval_s
        while True:
            await asyncio.sleep(interval)
            self.sweep(asyncio.get_running_loop().time())

    def sweep(self, now: float) -> None:
        gw = self.gw
        for route in gw.fleet.models.values():
            for replica in route.replicas:
                if replica.attempts:
                    self._sweep_attempts(replica, now)
            self._eject_outliers(route.replicas, now)

    def _sweep_attempts(self, replica: Replica, now: float) -> None:
        bound = stall_timeout(self.timeouts, replica.timing.itl_s)
        for attempt in list(replica.attempts):
            since = attempt.silent_since()
            if since is None:
                if now >= attempt.deadline:
                    attempt.abort("The model did not answer in time.")
            elif now - since > bound:
                attempt.abort(f"The model stopped answering mid-stream (silent {bound:g} s).")

    def _eject_outliers(self, replicas: list[Replica], now: float) -> None:
        if len(replicas) < 2:
            return
        views = [
            ReplicaLatency(r.latency.value, r.latency.samples, r.ready and r.health.available(now))
            for r in replicas
        ]
        for index in latency_outliers(views, self.outliers):
            replica = replicas[index]
            if replica.health.eject(now):
                gw = self.gw
                log.warning(
                    "replica %s of %s ejected as a latency outlier (%.3f s to first byte)",
                    replica.name,
                    replica.model,
                    replica.latency.value,
                )
                gw.metrics.child(gw.metrics.ejections, replica.model, replica.name).inc()
                gw.metrics.child(gw.metrics.upstream_failures, replica.model, "latency").inc()
                replica.latency.reset()
                gw.update_replica_gauges()
