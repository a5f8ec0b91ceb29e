"""Who may take a slot of a saturated model, and how far over the cap (pure bookkeeping).

Fair queuing (`fair_queue.FairWakeups`) orders the requests that wait; it cannot help
a quiet tenant whose request arrives while a busy one holds every slot, because nothing
is preempted: that request waits for the next answer to end. So, while several tenants
are active (a request within `window_s`, or one in flight):

- A tenant holding its weighted share of the model's slots or more (`capacity`: the
  per-replica cap times the ready replicas) may take a slot only while `reserve` of them
  (a fraction of `capacity`, at least one) stay free for the tenants under their share
  that used less than it.
- A tenant under its share may go up to `overcommit` requests over the per-replica cap
  (bounded: the engine's own `max_num_seqs` is usually far above the gateway's cap).

"Under its share" means: its recent average use (in-flight requests, averaged with time
constant `usage_tau_s`) is below its share. The average, not the instantaneous count,
decides, so a steady quiet tenant whose Poisson arrivals now and then overlap three deep
is still quiet, while a tenant that holds its share for seconds is not. The reserve rule
counts the taker's instantaneous requests and holds it back only for tenants under their
share that also used less than it recently: a burst that has just begun is held to the
reserve once its average passes the quiet tenant's, and its still-low average does not
hold back the quiet tenant in turn. (Until its average reaches its share, such a burst
may use the overcommit too.)

A tenant alone, or every tenant when fair sharing is off, sees the plain cap: the
single-tenant gateway stays exactly as work-conserving as without tenancy.

Several gateway processes (workers, replicas) share one model's slots: with a fresh
`peers` view (shared_shares.py, through Redis) the tenants, their requests and averages
and the model's slots are those of all processes, this one's live and the others' as of
their last report (at most a sync interval or two old). Without one, each decides alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from data_plane.gateway.tenancy.share_view import ALONE, PeerView, TenantLoad, combined


@dataclass(frozen=True, slots=True)
class ShareSettings:
    reserve_fraction: float = 0.25
    """Slots (a fraction of `capacity`, at least one) an over-share tenant leaves free."""
    overcommit: int = 0
    """Requests over the per-replica cap an under-share tenant may add to a replica."""
    window_s: float = 10.0
    """A tenant stays active this long after its last request."""
    usage_tau_s: float = 2.0
    """Time constant of the average use that tells under from over its share."""

    def __post_init__(self) -> None:
        if not 0 <= self.reserve_fraction < 1:
            raise ValueError("reserve_fraction must be in [0, 1)")
        if self.overcommit < 0 or self.window_s <= 0 or self.usage_tau_s <= 0:
            raise ValueError("overcommit must be >= 0; window_s and usage_tau_s > 0")


_UNDER = 0.99
"""The average approaches a steady count from below: within 1% of its share is at it."""

WAIT = None
"""`Shares.allowance` when the tenant must wait for a slot."""


@dataclass(slots=True)
class _Tenant:
    weight: int = 1
    seen: float = -math.inf
    in_flight: int = 0
    usage: float = 0.0
    """Average in-flight requests up to `updated`."""
    updated: float = 0.0

    def advance(self, now: float, tau: float) -> None:
        """Move the average to `now` (in-flight was constant since `updated`)."""
        dt = now - self.updated
        if dt > 0:
            keep = math.exp(-dt / tau)
            self.usage = self.usage * keep + self.in_flight * (1.0 - keep)
            self.updated = now


@dataclass(slots=True)
class Shares:
    """The shares of one model's slots (one per model and gateway process; the other
    processes' numbers come in through `peers`)."""

    settings: ShareSettings = field(default_factory=ShareSettings)
    peers: PeerView = ALONE
    """The other gateway processes' numbers for this model (shared_shares.py keeps it
    fresh; `ALONE`: this process decides on its own counts)."""
    _tenants: dict[str, _Tenant] = field(default_factory=dict)

    def seen(self, tenant: str, weight: int, now: float) -> None:
        """A request of `tenant` arrived (it is active for `window_s`)."""
        t = self._tenant(tenant, now)
        t.weight = max(1, weight)
        t.seen = now

    def allowance(self, tenant: str, used: int, capacity: int, now: float) -> int | None:
        """How far over the per-replica cap `tenant` may go on a replica (0: the cap
        holds), or `WAIT` (None) when it must leave the free slots to others.

        `used`: the model's requests in flight here; `capacity`: its slots at the cap here.
        With a fresh `peers` view the other gateway processes' tenants, requests and
        slots count too (share_view.py)."""
        if capacity <= 0:
            return 0
        if self.peers.capacity > 0:
            capacity, used = self.peers.capacity, used + self.peers.used
        active = self.loads(now)
        if self.peers.tenants:
            active = combined(active, self.peers.tenants)
        me = active.get(tenant)
        if me is None or len(active) < 2:
            return 0
        total = sum(t.weight for t in active.values())

        def share(t: TenantLoad) -> float:
            return capacity * t.weight / total

        def under(t: TenantLoad) -> bool:
            return t.usage < share(t) * _UNDER

        if me.in_flight >= share(me) and self.settings.reserve_fraction > 0:
            reserve = max(1, int(capacity * self.settings.reserve_fraction))
            if used >= capacity - reserve and any(
                under(t) and t.usage < me.usage for name, t in active.items() if name != tenant
            ):
                return WAIT
        return self.settings.overcommit if under(me) else 0

    def loads(self, now: float) -> dict[str, TenantLoad]:
        """This process's active tenants and their numbers at `now` (what it publishes)."""
        tau = self.settings.usage_tau_s
        out: dict[str, TenantLoad] = {}
        for name, t in self._active(now).items():
            t.advance(now, tau)
            out[name] = TenantLoad(t.weight, t.in_flight, t.usage)
        return out

    def usage(self, tenant: str, now: float) -> float:
        """`tenant`'s average in-flight requests at `now`."""
        t = self._tenants.get(tenant)
        if t is None:
            return 0.0
        t.advance(now, self.settings.usage_tau_s)
        return t.usage

    def took(self, tenant: str, now: float) -> None:
        t = self._tenant(tenant, now)
        t.advance(now, self.settings.usage_tau_s)
        t.in_flight += 1

    def released(self, tenant: str, now: float) -> None:
        t = self._tenants.get(tenant)
        if t is None:
            return
        t.advance(now, self.settings.usage_tau_s)
        t.in_flight = max(0, t.in_flight - 1)
        self._forget(now)

    def in_flight(self, tenant: str) -> int:
        t = self._tenants.get(tenant)
        return t.in_flight if t is not None else 0

    def _tenant(self, name: str, now: float) -> _Tenant:
        t = self._tenants.get(name)
        if t is None:
            t = self._tenants[name] = _Tenant(updated=now)
        return t

    def _active(self, now: float) -> dict[str, _Tenant]:
        window = self.settings.window_s
        return {n: t for n, t in self._tenants.items() if t.in_flight > 0 or now - t.seen <= window}

    def _forget(self, now: float) -> None:
        """Drop tenants idle long enough that their average is gone too (bounded memory)."""
        horizon = self.settings.window_s + 10 * self.settings.usage_tau_s
        for name in [
            n for n, t in self._tenants.items() if t.in_flight == 0 and now - t.seen > horizon
        ]:
            del self._tenants[name]
