"""The share sync's own decisions, without Redis: what it reports and how it applies a view.

(The sync with a real Redis, its outages and two gateways: tests/integration and
tests/faults.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from data_plane.gateway.fleet import Fleet, FleetSettings, FleetSnapshot, ModelInfo, ReplicaInfo
from data_plane.gateway.tenancy.fair_queue import FairWakeups
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.share_view import ALONE, ModelReport, TenantLoad
from data_plane.gateway.tenancy.shared_shares import SharedShares
from data_plane.gateway.tenancy.shares import Shares

CAP = 4


@dataclass
class Parts:
    sync: SharedShares
    fleet: Fleet
    shares: dict[str, Shares]
    wakeups: dict[str, FairWakeups]


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    fleet = Fleet(FleetSettings(per_replica_cap=CAP // 2))  # two workers: half each, alone
    replicas = (ReplicaInfo("r0", "http://127.0.0.1:1"), ReplicaInfo("r1", "http://127.0.0.1:2"))
    fleet.apply(FleetSnapshot((ModelInfo("llama", replicas),)))
    shares: dict[str, Shares] = {"llama": Shares()}
    wakeups: dict[str, FairWakeups] = {"llama": FairWakeups()}
    s = SharedShares(
        "redis://127.0.0.1:1/0",  # never called here
        fleet=fleet,
        shares=shares,
        wakeups=wakeups,
        per_replica_cap=CAP,
        metrics=TenantMetrics(CollectorRegistry()),
    )
    yield Parts(s, fleet, shares, wakeups)
    await s.close()


async def test_the_report_holds_this_process_tenants_and_requests(parts: Parts) -> None:
    route = parts.fleet.models["llama"]
    route.replicas[0].in_flight = 2
    shares = parts.shares["llama"]
    now = asyncio.get_running_loop().time()
    shares.seen("acme", 3, now)
    shares.took("acme", now)
    report = parts.sync.report()
    assert report["llama"].replicas == {"r0": 2}
    assert report["llama"].tenants["acme"].weight == 3
    assert report["llama"].tenants["acme"].in_flight == 1


async def test_a_view_sets_each_replica_cap_and_the_shared_capacity(parts: Parts) -> None:
    fleet = parts.fleet
    route = fleet.models["llama"]
    peers = {"llama": ModelReport({"acme": TenantLoad(1, 3, 3.0)}, {"r0": 3})}
    parts.sync.apply(peers)
    assert [r.cap_left for r in route.replicas] == [1, CAP]
    shares = parts.shares["llama"]
    assert shares.peers.capacity == CAP * 2
    assert shares.peers.used == 3
    # the fleet honours it: r0 has 1 slot left here, r1 the whole cap (not the static half)
    route.replicas[0].in_flight = 1
    route.replicas[1].in_flight = CAP - 1
    now = asyncio.get_running_loop().time()
    assert fleet.candidates(route, None, now) == [route.replicas[1]]
    parts.sync.alone()
    assert [r.cap_left for r in route.replicas] == [None, None]
    assert shares.peers is ALONE
    assert fleet.candidates(route, None, now) == [route.replicas[0]]  # static half: 2


async def test_room_freed_by_a_peer_wakes_a_waiter_here(parts: Parts) -> None:
    """Only this process' releases wake its waiters; a slot a peer frees shows up in a
    sync, which must wake them itself."""
    route = parts.fleet.models["llama"]
    parts.sync.apply({"llama": ModelReport({}, {"r0": CAP, "r1": CAP})})  # the peer holds all
    wakeups = parts.wakeups["llama"]
    waiter = asyncio.create_task(wakeups.wait(30))
    await asyncio.sleep(0)
    assert len(wakeups) == 1
    parts.sync.apply({"llama": ModelReport({}, {"r0": CAP})})  # the peer's requests on r1 ended
    assert await asyncio.wait_for(waiter, 5) is True
    assert route.replicas[1].cap_left == CAP
