"""The scheduling shell: one request's admission, selection and post-response hooks.

    pick: fair share (shares.seen, allowance) -> admission filters (Fleet.candidates_for)
          -> the Model's profile (route.policy.choose) -> took (in flight, shares.took,
          time queued) ; or hold (no ready replica yet) ; or wait (all at their cap)
    release / succeeded / failed: in flight, shares.released, wake a waiter; passive health

Waits are the only I/O: while every replica is at its cap a request waits its turn in
weighted fair queuing over tenants (FairWakeups) until `deadline`; while none is ready
(a cold start, an adapter loading) it is held until the fleet changes, up to `hold_until`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from data_plane.gateway.errors import NoReadyReplicaError, OverCapacityError
from data_plane.gateway.fleet import Fleet, ModelRoute, Replica
from data_plane.gateway.health import Failure
from data_plane.gateway.limits import Wakeups
from data_plane.gateway.metrics import GatewayMetrics
from data_plane.gateway.routing.policy import RouteRequest
from data_plane.gateway.settings import GatewaySettings
from data_plane.gateway.tenancy.fair_queue import DEFAULT_FLOW, FairWakeups
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.shares import WAIT, Shares

log = logging.getLogger("hoist.gateway")

# Held for a while instead of refused at once: the fleet may soon have what is missing.
_HOLDABLE = frozenset({"no_ready_replica", "adapter_not_loaded"})

SharesFactory = Callable[[str], Shares]
"""The fair-share state of one model (by name), made at its first request."""


class Scheduler:
    def __init__(
        self,
        settings: GatewaySettings,
        fleet: Fleet,
        *,
        metrics: GatewayMetrics,
        tenant_metrics: TenantMetrics,
        new_shares: SharesFactory,
        on_ejection: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._fair = settings.tenant_fair_queuing
        self._fleet = fleet
        self._metrics = metrics
        self._tenant_metrics = tenant_metrics
        self._new_shares = new_shares
        self._on_ejection = on_ejection
        self.wakeups: dict[str, FairWakeups] = {}
        self.shares: dict[str, Shares] = {}
        self._held: dict[str, int] = {}
        """Requests held per model while it has no ready replica."""
        self.fleet_changed = Wakeups()
        """Notified by discovery at every refresh: held requests look again."""

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
        body: bytes | None = None,
    ) -> Replica:
        """A replica for the request, waiting while all are at their cap (until `deadline`)
        or while none is ready yet (until `hold_until`: cold starts, adapters loading).

        Waiters for a replica are woken by weighted fair queuing over `flow` (tenant,
        weight). `body` is the request as the client sent it, for scorers that read the
        whole prompt (precise-prefix)."""
        loop = asyncio.get_running_loop()
        queued_since: float | None = None
        shares = self.shares.get(route.name)
        if shares is None:
            shares = self.shares[route.name] = self._new_shares(route.name)
        tenant = flow[0] if self._fair else DEFAULT_FLOW
        if tenant:
            shares.seen(tenant, flow[1], loop.time())
        admits: Callable[[], bool] | None = None  # built at the first wait: most never wait
        while True:
            now = loop.time()
            # tenancy hook: headroom for tenants under their share, and their overcommit
            allowance = self._allowance(route, shares, tenant, now)
            request = RouteRequest(adapter, prefix, now, tried, allowance or 0, body)
            try:
                candidates = self._fleet.candidates_for(route, request)
            except NoReadyReplicaError as exc:
                if tried or exc.code not in _HOLDABLE or loop.time() >= hold_until:
                    raise
                await self._hold(route.name, exc, hold_until - loop.time())
                continue
            if candidates and allowance is not WAIT:
                index, reason = route.policy.choose(candidates, request)
                metrics = self._metrics
                metrics.add(metrics.routing, route.name, route.policy_name, reason)
                replica = candidates[index]
                replica.in_flight += 1
                self._took(shares, flow[0], tenant, queued_since, loop.time())
                metrics.add(metrics.replica_in_flight, route.name, replica.name)
                return replica
            if queued_since is None:
                queued_since = loop.time()
            if admits is None:
                admits = self._admits(route, adapter, tried, shares, tenant)
            await self._wait(route.name, flow, admits, deadline - loop.time())

    async def _wait(
        self, model: str, flow: tuple[str, int], admits: Callable[[], bool], timeout_s: float
    ) -> None:
        """Wait for a slot at `model`'s replicas; 429 when none came within `timeout_s`."""
        wakeups = self.wakeups.setdefault(model, FairWakeups())
        queued = self._metrics.child(self._metrics.queued, model, "replica_cap")
        queued.inc()
        try:
            fair = flow if self._fair else (DEFAULT_FLOW, 1)
            woken = await wakeups.wait(timeout_s, *fair, admits)
        finally:
            queued.dec()
        if not woken:
            self._metrics.child(self._metrics.rejected, "replica_cap").inc()
            raise OverCapacityError(
                f"Every replica of model `{model}` is at capacity; retry shortly.",
                retry_after_s=self._settings.retry_after_s,
            )

    async def _hold(self, model: str, reason: NoReadyReplicaError, timeout_s: float) -> None:
        """Wait (up to `timeout_s`) for the fleet to change while `model` has no ready
        replica; 503 at once when `cold_start_max_held` requests already wait for it."""
        held = self._held.get(model, 0)
        if held >= self._settings.cold_start_max_held:
            self._metrics.child(self._metrics.rejected, "cold_start_full").inc()
            raise NoReadyReplicaError(
                f"{reason.message} {held} requests already wait for it here.",
                code=reason.code,
                retry_after_s=self._settings.retry_after_s,
            )
        self._held[model] = held + 1
        queued = self._metrics.child(self._metrics.queued, model, "cold_start")
        queued.inc()
        try:
            await self.fleet_changed.wait(timeout_s)
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
            request = RouteRequest(adapter, "", now, tried, allowance or 0)
            try:
                return bool(self._fleet.candidates_for(route, request))
            except NoReadyReplicaError:
                return True  # woken, it holds or fails on its own

        return admits

    def _allowance(self, route: ModelRoute, shares: Shares, tenant: str, now: float) -> int | None:
        if not tenant:
            return 0
        ready = [r for r in route.replicas if r.ready]
        used = sum(r.in_flight for r in ready)
        cap = self._fleet.settings.per_replica_cap
        return shares.allowance(tenant, used, cap * len(ready), now)

    def _took(
        self, shares: Shares, flow: str, tenant: str, queued_since: float | None, now: float
    ) -> None:
        if tenant:
            shares.took(tenant, now)
        if queued_since is not None and flow:  # tenancy hook: time queued
            self._tenant_metrics.queued(flow, now - queued_since)

    # --- post-response hooks ----------------------------------------------------------

    def release(self, replica: Replica, tenant: str = DEFAULT_FLOW) -> None:
        """The request no longer holds `replica` (answered, failed or given up)."""
        replica.in_flight -= 1
        if tenant and self._fair:  # tenancy hook
            self.shares[replica.model].released(tenant, asyncio.get_running_loop().time())
        if not replica.retired:  # a retired replica's series is gone: do not bring it back
            metrics = self._metrics
            metrics.add(metrics.replica_in_flight, replica.model, replica.name, amount=-1)
        wakeups = self.wakeups.get(replica.model)
        if wakeups:
            wakeups.notify()

    def succeeded(self, replica: Replica) -> None:
        replica.health.record_success()
        replica.last_ok = asyncio.get_running_loop().time()

    def failed(self, replica: Replica, kind: Failure) -> None:
        self._metrics.child(self._metrics.upstream_failures, replica.model, kind.value).inc()
        now = asyncio.get_running_loop().time()
        if replica.health.record_failure(kind, now):
            self._metrics.child(self._metrics.ejections, replica.model, replica.name).inc()
            log.warning(
                "replica %s of %s ejected after a %s failure", replica.name, replica.model, kind
            )
            self._on_ejection()
