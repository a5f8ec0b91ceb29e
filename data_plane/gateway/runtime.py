"""The gateway's live parts, built at start-up and passed to the routes (no globals).

`Gateway` owns the pooled upstream session, the fleet, the limits and the metrics, and
runs two background loops: discovery (what runs where) and load polling (each engine's
waiting queue and active adapters, from its `/metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

import aiohttp

from data_plane.gateway.discovery import Discovery, DiscoveryError
from data_plane.gateway.engine_metrics import parse_engine_metrics
from data_plane.gateway.errors import OverCapacityError
from data_plane.gateway.fleet import Fleet, FleetSettings, ModelRoute, Replica
from data_plane.gateway.health import Failure, HealthPolicy
from data_plane.gateway.limits import SlotPool, Wakeups
from data_plane.gateway.metrics import GatewayMetrics
from data_plane.gateway.routing import RouteRequest
from data_plane.gateway.settings import GatewaySettings

log = logging.getLogger("hoist.gateway")

DiscoveryFactory = Callable[[aiohttp.ClientSession], Discovery]


def new_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """One pooled client for every upstream: keep-alive, no decompression (bytes pass through)."""
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=settings.connect_timeout_s, sock_read=None
        ),
    )


class Gateway:
    def __init__(self, settings: GatewaySettings, discovery_factory: DiscoveryFactory) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.fleet = Fleet(
            FleetSettings(
                per_replica_cap=math.ceil(settings.per_replica_max_in_flight / settings.workers),
                load_factor=settings.load_factor,
                health=HealthPolicy(
                    failures_to_eject=settings.failures_to_eject,
                    cooldown_s=settings.eject_cooldown_s,
                    max_cooldown_s=settings.max_eject_cooldown_s,
                ),
                retry_after_s=settings.retry_after_s,
            )
        )
        self.admission = SlotPool(math.ceil(settings.max_concurrent_requests / settings.workers))
        self._wakeups: dict[str, Wakeups] = {}
        self._discovery_factory = discovery_factory
        self._session: aiohttp.ClientSession | None = None
        self.discovery: Discovery | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshed = asyncio.Event()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the gateway is not started")
        return self._session

    async def start(self) -> None:
        self._session = new_session(self.settings)
        self.discovery = self._discovery_factory(self._session)
        await self.refresh()
        self._tasks.append(asyncio.create_task(self._discovery_loop(), name="gateway-discovery"))
        if self.settings.load_poll_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._load_loop(), name="gateway-load-poll"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- discovery and load -------------------------------------------------------------

    async def refresh(self) -> bool:
        """Read discovery once; False (and the last snapshot kept) when it fails."""
        if self.discovery is None:
            return False
        try:
            snapshot = await self.discovery.fetch()
        except DiscoveryError as exc:
            self.metrics.discovery_errors.inc()
            log.warning("discovery failed, keeping the last view: %s", exc)
            return False
        self.fleet.apply(snapshot)
        self._update_replica_gauges()
        self._refreshed.set()
        return True

    async def _discovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.discovery_interval_s)
            await self.refresh()

    async def _load_loop(self) -> None:
        while True:
            replicas = [r for r in self.fleet.replicas() if r.ready]
            if replicas:
                await asyncio.gather(*(self._poll_load(r) for r in replicas))
            self._update_replica_gauges()
            await asyncio.sleep(self.settings.load_poll_interval_s)

    async def _poll_load(self, replica: Replica) -> None:
        limit = aiohttp.ClientTimeout(total=max(0.5, self.settings.load_poll_interval_s))
        try:
            async with self.session.get(replica.url + "/metrics", timeout=limit) as resp:
                if resp.status != 200:
                    return
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
            return  # passive health judges real requests; a missed scrape only leaves stale load
        load = parse_engine_metrics(text)
        replica.waiting = load.waiting
        replica.running_adapters = load.running_adapters

    def _update_replica_gauges(self) -> None:
        now = asyncio.get_running_loop().time()
        gauge = self.metrics.replicas
        for route in self.fleet.models.values():
            counts = {"ready": 0, "ejected": 0, "not_ready": 0}
            for r in route.replicas:
                if not r.ready:
                    counts["not_ready"] += 1
                elif r.health.available(now):
                    counts["ready"] += 1
                else:
                    counts["ejected"] += 1
            for state, n in counts.items():
                gauge.labels(route.name, state).set(n)

    # --- per request ----------------------------------------------------------------------

    async def pick(
        self,
        route: ModelRoute,
        adapter: str | None,
        prefix: str,
        tried: tuple[Replica, ...],
        deadline: float,
    ) -> Replica:
        """A replica for the request, waiting (until `deadline`) while all are at their cap."""
        loop = asyncio.get_running_loop()
        while True:
            candidates = self.fleet.candidates(route, adapter, loop.time(), tried)
            if candidates:
                index, reason = route.policy.choose(candidates, RouteRequest(adapter, prefix))
                self.metrics.child(
                    self.metrics.routing, route.name, route.policy_name, reason
                ).inc()
                replica = candidates[index]
                replica.in_flight += 1
                self.metrics.child(self.metrics.replica_in_flight, route.name, replica.name).inc()
                return replica
            wakeups = self._wakeups.setdefault(route.name, Wakeups())
            self.metrics.queued.inc()
            try:
                woken = await wakeups.wait(deadline - loop.time())
            finally:
                self.metrics.queued.dec()
            if not woken:
                self.metrics.child(self.metrics.rejected, "replica_cap").inc()
                raise OverCapacityError(
                    f"Every replica of model `{route.name}` is at capacity; retry shortly.",
                    retry_after_s=self.settings.retry_after_s,
                )

    def release(self, replica: Replica) -> None:
        replica.in_flight -= 1
        self.metrics.child(self.metrics.replica_in_flight, replica.model, replica.name).dec()
        wakeups = self._wakeups.get(replica.model)
        if wakeups:
            wakeups.notify()

    def succeeded(self, replica: Replica) -> None:
        replica.health.record_success()

    def failed(self, replica: Replica, kind: Failure) -> None:
        self.metrics.child(self.metrics.upstream_failures, replica.model, kind.value).inc()
        now = asyncio.get_running_loop().time()
        if replica.health.record_failure(kind, now):
            self.metrics.child(self.metrics.ejections, replica.model, replica.name).inc()
            log.warning(
                "replica %s of %s ejected after a %s failure", replica.name, replica.model, kind
            )
            self._update_replica_gauges()
