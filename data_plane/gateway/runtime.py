"""The gateway's live parts, built at start-up and passed to the routes (no globals).

`Gateway` owns the pooled upstream session, the fleet, the scheduler (which replica serves
a request: data_plane/gateway/scheduling), the limits and the metrics, and runs background
loops: discovery (what runs where), load polling (each engine's queue, active adapters and
latency counters, from its `/metrics`) and the watchdog (active health probes, the stall
sweeper and latency outliers, watchdog.py). It also owns the KV-cache-event index and its
follower (kv_events/service.py): the replicas of `precise-prefix` Models are followed from
each discovery refresh, and unfollowed at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

import aiohttp
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from data_plane.gateway.adapters.source_check import SourceChecker
from data_plane.gateway.discovery import Discovery, DiscoveryError, WatchingDiscovery
from data_plane.gateway.discovery.reads import DiscoveryReads
from data_plane.gateway.fleet import Fleet, FleetSettings
from data_plane.gateway.fleet_watch import count_replicas, poll_load
from data_plane.gateway.health import HealthPolicy
from data_plane.gateway.kv_events.service import KvEvents
from data_plane.gateway.kv_events.settings import KvEventsSettings
from data_plane.gateway.limits import SlotPool
from data_plane.gateway.metrics import GatewayMetrics
from data_plane.gateway.scheduling.scheduler import Scheduler
from data_plane.gateway.settings import DiscoveryKind, GatewaySettings, read_token
from data_plane.gateway.tenancy import shared_shares
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.service import Tenancy
from data_plane.gateway.tenancy.shares import Shares, ShareSettings
from data_plane.gateway.upstream_client import UpstreamClient
from data_plane.gateway.watchdog import Watchdog
from data_plane.telemetry import stop_tracing

log = logging.getLogger("hoist.gateway")

DiscoveryFactory = Callable[[aiohttp.ClientSession], Discovery]

MISS_READ_SPACING_S = 0.1
"""Reads of discovery for requests naming unknown models begin at most this often."""


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


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
    def __init__(
        self,
        settings: GatewaySettings,
        discovery_factory: DiscoveryFactory,
        tracing: TracerProvider | None = None,
        kv_events: KvEventsSettings | None = None,
    ) -> None:
        self.settings = settings
        self._tracing = tracing
        self.tracer: Tracer | None = (
            tracing.get_tracer("hoist.gateway") if tracing is not None else None
        )
        """The proxy's span per request (tracing.py); None: tracing is off."""
        self.metrics = GatewayMetrics()
        self.kv_events = KvEvents(kv_events if kv_events is not None else KvEventsSettings())
        """The KV index the `precise-prefix` profiles read, and the follower feeding it."""
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
            ),
            self.kv_events.context,
        )
        # tenancy hook: keys, tenants and quotas (data_plane/gateway/tenancy)
        self.tenancy = Tenancy.from_files(
            settings.tenants_files,
            settings.tenant_keys_file,
            settings.api_keys,
            TenantMetrics(self.metrics.registry),
            salt=settings.tenant_cache_salt,
            redis_url=settings.tenant_redis_url,
            redis_timeout_s=settings.tenant_redis_timeout_s,
        )
        self.metrics_token = read_token(settings.metrics_token_file)
        """Accepted on `/metrics` besides operator keys (None: operator keys only)."""
        self.sources = SourceChecker(  # what adapter sources the adapter API accepts
            settings.adapter_source_policy(), settings.adapter_install_dirs
        )
        self.admission = SlotPool(math.ceil(settings.max_concurrent_requests / settings.workers))
        share_settings = ShareSettings(
            reserve_fraction=settings.tenant_reserve_fraction,
            overcommit=math.ceil(settings.tenant_overcommit / settings.workers),
        )
        self.scheduler = Scheduler(
            settings,
            self.fleet,
            metrics=self.metrics,
            tenant_metrics=self.tenancy.metrics,
            new_shares=lambda model: Shares(share_settings),
            on_ejection=self.update_replica_gauges,
        )
        # the proxy's calls (proxy.py), bound to the scheduler's
        self.pick = self.scheduler.pick
        self.release = self.scheduler.release
        self.succeeded = self.scheduler.succeeded
        self.failed = self.scheduler.failed
        self.shared_shares = shared_shares.from_settings(  # tenancy hook: across processes
            settings,
            self.fleet,
            self.scheduler.shares,
            self.scheduler.wakeups,
            self.tenancy.metrics,
        )
        self._discovery_factory = discovery_factory
        self._session: aiohttp.ClientSession | None = None
        self._upstream: UpstreamClient | None = None
        self.discovery: Discovery | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []  # closed at stop()
        self.reads = DiscoveryReads(self._read_discovery, _loop_time, MISS_READ_SPACING_S)
        """Discovery reads in order, and a fresh one for a request naming an unknown model."""
        self.watchdog = Watchdog(self)
        self.draining = False
        """SIGTERM came: /readyz fails and answers close their connections (drain.py)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        """For discovery, load polls and the adapter store."""
        if self._session is None:
            raise RuntimeError("the gateway is not started")
        return self._session

    @property
    def upstream(self) -> UpstreamClient:
        """The proxy's client to the engines (the hot path)."""
        if self._upstream is None:
            raise RuntimeError("the gateway is not started")
        return self._upstream

    async def start(self) -> None:
        """Open the clients and start the background loops; on failure, close what opened."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self._session = new_session(self.settings)
        self._upstream = UpstreamClient(self.settings.connect_timeout_s)
        self.discovery = self._discovery_factory(self._session)
        if isinstance(self.discovery, WatchingDiscovery):
            await self.discovery.start()
        await self.refresh()
        settings = self.settings
        if (  # tenancy hook: Tenant resources, unless files declare the tenants
            settings.discovery is DiscoveryKind.KUBERNETES
            and not settings.tenants_files
            and settings.tenant_keys_file is None
        ):
            await self._start_kube_tenants()
        self._tasks.append(asyncio.create_task(self._discovery_loop(), name="gateway-discovery"))
        if self.settings.load_poll_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._load_loop(), name="gateway-load-poll"))
        if self.settings.health_probe_interval_s > 0:
            probes = self.watchdog.probe_loop()
            self._tasks.append(asyncio.create_task(probes, name="gateway-health-probes"))
        sweeper = self.watchdog.sweep_loop()
        self._tasks.append(asyncio.create_task(sweeper, name="gateway-stall-sweeper"))
        if self.shared_shares is not None:
            self.shared_shares.start()

    async def _start_kube_tenants(self) -> None:
        from data_plane.gateway.discovery.kube_api import KubeApi
        from data_plane.gateway.tenancy import kube_source

        api = KubeApi.connect(self.settings)
        self._closers.append(api.aclose)
        ns = self.settings.kube_namespace
        await kube_source.refresh(self.tenancy, api, ns)
        loop = kube_source.refresh_loop(self.tenancy, api, ns, self.settings.discovery_interval_s)
        self._tasks.append(asyncio.create_task(loop, name="gateway-tenants"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.reads.close()
        if self.shared_shares is not None:
            await self.shared_shares.close()
        if isinstance(self.discovery, WatchingDiscovery):
            await self.discovery.close()
        await self.kv_events.close()
        for close in self._closers:
            await close()
        self._closers.clear()
        await self.tenancy.close()  # tenancy hook
        if self._upstream is not None:
            await self._upstream.close()
            self._upstream = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._tracing is not None:  # export the last spans (the exporter's timeout bounds it)
            await asyncio.to_thread(stop_tracing, self._tracing)
            self._tracing = None

    # --- discovery and load -------------------------------------------------------------

    async def refresh(self) -> bool:
        """Read discovery once; False (and the last snapshot kept) when it fails."""
        return await self.reads.read()

    async def _read_discovery(self) -> bool:
        if self.discovery is None:
            return False
        try:
            snapshot = await self.discovery.fetch()
        except DiscoveryError as exc:
            self.metrics.discovery_errors.inc()
            log.warning("discovery failed, keeping the last view: %s", exc)
            return False
        before = list(self.fleet.replicas())
        self.fleet.apply(snapshot)
        self.kv_events.follow(self.fleet.models.values())
        for replica in before:
            if replica.retired:
                self.metrics.forget_replica(replica.model, replica.name)
        self.scheduler.fleet_changed.notify_all()
        self.update_replica_gauges()
        return True

    async def _discovery_loop(self) -> None:
        """Refresh on every change a watching source reports, and each interval anyway."""
        while True:
            if isinstance(self.discovery, WatchingDiscovery):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.discovery_interval_s):
                        await self.discovery.wait_changed()
            else:
                await asyncio.sleep(self.settings.discovery_interval_s)
            await self.refresh()

    async def _load_loop(self) -> None:
        while True:
            replicas = [r for r in self.fleet.replicas() if r.ready]
            if replicas:
                interval = self.settings.load_poll_interval_s
                await asyncio.gather(*(poll_load(self.session, r, interval) for r in replicas))
            self.update_replica_gauges()
            await asyncio.sleep(self.settings.load_poll_interval_s)

    def update_replica_gauges(self) -> None:
        count_replicas(self.fleet, self.metrics, asyncio.get_running_loop().time())
