"""The Scheduler's shell: in-flight counts, waits at the cap, holds while none is ready,
and passive health, on a real Fleet (two replicas of one model, cap 1 each)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import CollectorRegistry

from data_plane.gateway.discovery.state import parse_upstreams
from data_plane.gateway.errors import NoReadyReplicaError, OverCapacityError
from data_plane.gateway.fleet import Fleet, FleetSettings, Replica
from data_plane.gateway.health import Failure, HealthPolicy
from data_plane.gateway.metrics import GatewayMetrics
from data_plane.gateway.scheduling.scheduler import Scheduler
from data_plane.gateway.settings import GatewaySettings
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.shares import Shares

LONG = 60.0


class Built:
    def __init__(self, *, replicas: int = 2, ready: bool = True, max_held: int = 256) -> None:
        self.fleet = Fleet(
            FleetSettings(per_replica_cap=1, health=HealthPolicy(failures_to_eject=2))
        )
        upstreams = [f"m=http://127.0.0.1:{9000 + i}" for i in range(replicas)]
        self.fleet.apply(parse_upstreams(upstreams))
        for replica in self.fleet.replicas():
            replica.ready = ready
        self.ejections = 0
        registry = CollectorRegistry()
        self.scheduler = Scheduler(
            GatewaySettings(cold_start_max_held=max_held),
            self.fleet,
            metrics=GatewayMetrics(registry),
            tenant_metrics=TenantMetrics(registry),
            new_shares=lambda model: Shares(),
            on_ejection=self._ejected,
        )
        self.route, _ = self.fleet.resolve("m")

    def _ejected(self) -> None:
        self.ejections += 1

    async def pick(self, deadline_s: float = LONG, hold_s: float = LONG) -> Replica:
        now = asyncio.get_running_loop().time()
        return await self.scheduler.pick(
            self.route, None, "", (), deadline=now + deadline_s, hold_until=now + hold_s
        )


async def test_a_pick_takes_a_slot_and_a_release_gives_it_back() -> None:
    built = Built()
    first = await built.pick()
    second = await built.pick()
    assert {first.name, second.name} == {r.name for r in built.route.replicas}  # cap 1 each
    assert first.in_flight == second.in_flight == 1
    built.scheduler.release(first)
    assert first.in_flight == 0


async def test_at_the_cap_a_request_waits_for_a_release() -> None:
    built = Built()
    held = [await built.pick(), await built.pick()]
    waiting = asyncio.create_task(built.pick())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # both replicas are at their cap
    built.scheduler.release(held[1])
    assert await asyncio.wait_for(waiting, LONG) is held[1]


async def test_at_the_cap_past_the_deadline_is_a_429() -> None:
    built = Built(replicas=1)
    await built.pick()
    with pytest.raises(OverCapacityError):
        await built.pick(deadline_s=0.05)


async def test_with_none_ready_a_request_is_held_until_the_fleet_changes() -> None:
    built = Built(replicas=1, ready=False)
    held = asyncio.create_task(built.pick())
    await asyncio.sleep(0.05)
    assert not held.done()
    (replica,) = built.route.replicas
    replica.ready = True
    built.scheduler.fleet_changed.notify_all()
    assert await asyncio.wait_for(held, LONG) is replica


async def test_past_the_held_count_a_request_is_refused_at_once() -> None:
    built = Built(replicas=1, ready=False, max_held=1)
    held = asyncio.create_task(built.pick())
    await asyncio.sleep(0.05)
    with pytest.raises(NoReadyReplicaError, match="already wait"):
        await built.pick()
    held.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await held


async def test_failures_eject_a_replica_and_successes_keep_it() -> None:
    built = Built()
    flaky, gone = built.route.replicas
    built.scheduler.failed(flaky, Failure.STATUS)
    built.scheduler.succeeded(flaky)  # a success in between resets the count
    built.scheduler.failed(flaky, Failure.STATUS)
    assert built.ejections == 0
    built.scheduler.failed(flaky, Failure.STATUS)  # two in a row: out
    assert built.ejections == 1
    built.scheduler.failed(gone, Failure.CONNECT)  # unreachable: out at once
    assert built.ejections == 2
    now = asyncio.get_running_loop().time()
    assert not flaky.available(now)
    assert not gone.available(now)
    with pytest.raises(NoReadyReplicaError, match="No ready replica"):
        await built.pick(hold_s=0)  # not held: refused while both are out
