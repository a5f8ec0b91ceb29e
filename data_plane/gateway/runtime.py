"""The gateway's live parts, built at start-up and passed to the routes (no globals).

`Gateway` owns the pooled upstream session, the fleet, the limits and the metrics, and
runs background loops: discovery (what runs where), load polling (each engine's queue,
active adapters and latency counters, from its `/metrics`) and the watchdog (active health
probes, the stall sweeper and latency outliers, watchdog.py).
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

from data_plane.gateway.discovery import Discovery, DiscoveryError, WatchingDiscovery
from data_plane.gateway.engine_metrics import parse_engine_metrics
from data_plane.gateway.errors import NoReadyReplicaError, OverCapacityError
from data_plane.gateway.fleet import Fleet, FleetSettings, ModelRoute, Replica
from data_plane.gateway.health import Failure, HealthPolicy
from data_plane.gateway.limits import SlotPool, Wakeups
from data_plane.gateway.liveness import recent_timing
from data_plane.gateway.metrics import GatewayMetrics
from data_plane.gateway.routing import RouteRequest
from data_plane.gateway.settings import DiscoveryKind, GatewaySettings, read_token
from data_plane.gateway.source_check import SourceChecker
from data_plane.gateway.tenancy import shared_shares
from data_plane.gateway.tenancy.fair_queue import DEFAULT_FLOW, FairWakeups
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.service import Tenancy
from data_plane.gateway.tenancy.shares import WAIT, Shares, ShareSettings
from data_plane.gateway.upstream_client import UpstreamClient
from data_plane.gateway.watchdog import Watchdog
from data_plane.telemetry import stop_tracing

log = logging.getLogger("hoist.gateway")

# Held for a while instead of refused at once: the fleet may soon have what is missing.
_HOLDABLE = frozenset({"no_ready_replica", "adapter_not_loaded"})

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
    def __init__(
        self,
        settings: GatewaySettings,
        discovery_factory: DiscoveryFactory,
        tracing: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self._tracing = tracing
        self.tracer: Tracer | None = (
            tracing.get_tracer("hoist.gateway") if tracing is not None else None
        )
        """The proxy's span per request (tracing.py); None: tracing is off."""
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
        self._wakeups: dict[str, FairWakeups] = {}
        self._shares: dict[str, Shares] = {}
        self._share_settings = ShareSettings(
            reserve_fraction=settings.tenant_reserve_fraction,
            overcommit=math.ceil(settings.tenant_overcommit / settings.workers),
        )
        self.shared_shares = shared_shares.from_settings(  # tenancy hook: across processes
            settings, self.fleet, self._shares, self._wakeups, self.tenancy.metrics
        )
        self._fleet_changed = Wakeups()
        self._held: dict[str, int] = {}
        """Requests held per model while it has no ready replica."""
        self._discovery_factory = discovery_factory
        self._session: aiohttp.ClientSession | None = None
        self._upstream: UpstreamClient | None = None
        self.discovery: Discovery | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []  # closed at stop()
        self._refreshed = asyncio.Event()
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
        if self.shared_shares is not None:
            await self.shared_shares.close()
        if isinstance(self.discovery, WatchingDiscovery):
            await self.discovery.close()
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
        for replica in before:
            if replica.retired:
                self.metrics.forget_replica(replica.model, replica.name)
        self._fleet_changed.notify_all()
        self.update_replica_gauges()
        self._refreshed.set()
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
                await asyncio.gather(*(self._poll_load(r) for r in replicas))
            self.update_replica_gauges()
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
        replica.running = load.running
        replica.running_adapters = load.running_adapters
        replica.timing = recent_timing(replica.counters, load.counters, replica.timing)
        replica.counters = load.counters

    def update_replica_gauges(self) -> None:
        now = asyncio.get_running_loop().time()
        gauge = self.metrics.replicas
        for route in self.fleet.models.values():
            self.metrics.declare_model(route.name)
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
        *,
        deadline: float,
        hold_until: float,
        flow: tuple[str, int] = (DEFAULT_FLOW, 1),
    ) -> Replica:
        """A replica for the request, waiting while all are at their cap (until `deadline`)
        or while none is ready yet (until `hold_until`: cold starts, adapters loading).

        Waiters for a replica are woken by weighted fair queuing over `flow` (tenant,
        weight)."""
        loop = asyncio.get_running_loop()
        queued_since: float | None = None
        shares = self._shares.get(route.name)
        if shares is None:
            shares = self._shares[route.name] = Shares(self._share_settings)
        tenant = flow[0] if self.settings.tenant_fair_queuing else DEFAULT_FLOW
        if tenant:
            shares.seen(tenant, flow[1], loop.time())
        admits = self._admits(route, adapter, tried, shares, tenant)
        while True:
            # tenancy hook: headroom for tenants under their share, and their overcommit
            allowance = self._allowance(route, shares, tenant, loop.time())
            try:
                candidates = self.fleet.candidates(
                    route, adapter, loop.time(), tried, over_cap=allowance or 0
                )
            except NoReadyReplicaError as exc:
                if tried or exc.code not in _HOLDABLE or loop.time() >= hold_until:
                    raise
                await self._hold(route.name, exc, hold_until - loop.time())
                continue
            if allowance is WAIT:
                candidates = []
            if candidates:
                index, reason = route.policy.choose(candidates, RouteRequest(adapter, prefix))
                self.metrics.child(
                    self.metrics.routing, route.name, route.policy_name, reason
                ).inc()
                replica = candidates[index]
                replica.in_flight += 1
                self._took(shares, flow[0], tenant, queued_since, loop.time())
                self.metrics.child(self.metrics.replica_in_flight, route.name, replica.name).inc()
                return replica
            if queued_since is None:
                queued_since = loop.time()
            wakeups = self._wakeups.setdefault(route.name, FairWakeups())
            queued = self.metrics.child(self.metrics.queued, route.name, "replica_cap")
            queued.inc()
            try:
                fair = flow if self.settings.tenant_fair_queuing else (DEFAULT_FLOW, 1)
                woken = await wakeups.wait(deadline - loop.time(), *fair, admits)
            finally:
                queued.dec()
            if not woken:
                self.metrics.child(self.metrics.rejected, "replica_cap").inc()
                raise OverCapacityError(
                    f"Every replica of model `{route.name}` is at capacity; retry shortly.",
                    retry_after_s=self.settings.retry_after_s,
                )

    async def _hold(self, model: str, reason: NoReadyReplicaError, timeout_s: float) -> None:
        """Wait (up to `timeout_s`) for the fleet to change while `model` has no ready
        replica; 503 at once when `cold_start_max_held` requests already wait for it."""
        held = self._held.get(model, 0)
        if held >= self.settings.cold_start_max_held:
            self.metrics.child(self.metrics.rejected, "cold_start_full").inc()
            raise NoReadyReplicaError(
                f"{reason.message} {held} requests already wait for it here.",
                code=reason.code,
                retry_after_s=self.settings.retry_after_s,
            )
        self._held[model] = held + 1
        queued = self.metrics.child(self.metrics.queued, model, "cold_start")
        queued.inc()
        try:
            await self._fleet_changed.wait(timeout_s)
        finally:
            queued.dec()
            self._held[model] -= 1
            if not self._held[model]:
                del self._held[model]

    def _admits(
        self,
        route: ModelRoute,
        adapter: str | None,
        tried: tuple[Replica, ...],
        shares: Shares,
        tenant: str,
    ) -> Callable[[], bool]:
        """Whether a slot freed now could go to this request: only then does a release
        wake it (`FairWakeups.notify` passes over it otherwise)."""
        loop = asyncio.get_running_loop()

        def admits() -> bool:
            now = loop.time()
            allowance = self._allowance(route, shares, tenant, now)
            if allowance is WAIT:
                return False
            try:
                return bool(self.fleet.candidates(route, adapter, now, tried, allowance or 0))
            except NoReadyReplicaError:
                return True  # woken, it holds or fails on its own

        return admits

    def _allowance(self, route: ModelRoute, shares: Shares, tenant: str, now: float) -> int | None:
        if not tenant:
            return 0
        ready = [r for r in route.replicas if r.ready]
        used = sum(r.in_flight for r in ready)
        return shares.allowance(tenant, used, self.fleet.settings.per_replica_cap * len(ready), now)

    def _took(
        self, shares: Shares, flow: str, tenant: str, queued_since: float | None, now: float
    ) -> None:
        if tenant:
            shares.took(tenant, now)
        if queued_since is not None and flow:  # tenancy hook: time queued
            self.tenancy.metrics.queued(flow, now - queued_since)

    def release(self, replica: Replica, tenant: str = DEFAULT_FLOW) -> None:
        replica.in_flight -= 1
        if tenant and self.settings.tenant_fair_queuing:  # tenancy hook
            self._shares[replica.model].released(tenant, asyncio.get_running_loop().time())
        if not replica.retired:  # a retired replica's series is gone: do not bring it back
            self.metrics.child(self.metrics.replica_in_flight, replica.model, replica.name).dec()
        wakeups = self._wakeups.get(replica.model)
        if wakeups:
            wakeups.notify()

    def succeeded(self, replica: Replica) -> None:
        replica.health.record_success()
        replica.last_ok = asyncio.get_running_loop().time()

    def failed(self, replica: Replica, kind: Failure) -> None:
        self.metrics.child(self.metrics.upstream_failures, replica.model, kind.value).inc()
        now = asyncio.get_running_loop().time()
        if replica.health.record_failure(kind, now):
            self.metrics.child(self.metrics.ejections, replica.model, replica.name).inc()
            log.warning(
                "replica %s of %s ejected after a %s failure", replica.name, replica.model, kind
            )
            self.update_replica_gauges()
