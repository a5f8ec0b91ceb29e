"""The operator's periodic walk against the API emulator: it pauses when kopf's peering
pauses this replica (a live peer with a higher or equal priority), and runs otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from control_plane.kube import KINDS, Ref, cluster_ref
from control_plane.operator.settings import OperatorSettings
from control_plane.operator.walk import Job, PeeringGate, PeriodicWalk, WalkMetrics
from tests.support.kube_emulator import running_emulator
from tests.support.operator_harness import Cluster, cluster_client, eventually

CLUSTER_PEERING = cluster_ref("clusterkopfpeerings")
ME = "me@test/1"


def settings(**overrides: Any) -> OperatorSettings:
    base: dict[str, Any] = {"standalone": False, "peering_priority": 100, "namespaces": []}
    base.update(overrides)
    return OperatorSettings(**base)


def seen(priority: int, *, ago: float = 0.0, lifetime: int = 60) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(seconds=ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": at.isoformat()}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with running_emulator() as (_, url), cluster_client(url) as client:
        yield client


async def peering(cluster: Cluster, where: Ref, name: str, peers: dict[str, Any]) -> None:
    kind = where.kind.kind
    await cluster.kube.create(
        where, {"apiVersion": "kopf.dev/v1", "kind": kind, "metadata": {"name": name}}
    )
    await cluster.kube.merge_patch(where.named(name), {"status": peers})


def gate(cluster: Cluster, **overrides: Any) -> PeeringGate:
    return PeeringGate(cluster.kube, settings(**overrides), ME, ttl_seconds=0)


async def test_the_gate_reads_kopfs_rule_from_the_peering_object(cluster: Cluster) -> None:
    # no peering object: kopf runs (unless peering is mandatory and its CRDs are missing,
    # which they are not here)
    assert await gate(cluster).active()
    assert await gate(cluster, peering_mandatory=True).active()
    await peering(cluster, CLUSTER_PEERING, "hoist", {ME: seen(100), "other": seen(200)})
    assert not await gate(cluster).active()
    assert await gate(cluster, peering_priority=300).active()
    assert not await gate(cluster, peering_priority=200).active()  # equal: both pause
    assert await gate(cluster, standalone=True).active()
    assert await gate(cluster, peering_name="elsewhere").active()
    # the other replica stopped reporting: dead after its lifetime
    await cluster.kube.merge_patch(
        CLUSTER_PEERING.named("hoist"), {"status": {"other": seen(200, ago=120)}}
    )
    assert await gate(cluster).active()


async def test_a_namespaced_operator_reads_each_namespaces_peering(cluster: Cluster) -> None:
    await peering(cluster, Ref(KINDS["kopfpeerings"], "team-b"), "hoist", {"other": seen(500)})
    assert await gate(cluster, namespaces=["team-a"]).active()
    assert not await gate(cluster, namespaces=["team-a", "team-b"]).active()
    assert await gate(cluster).active()  # cluster-wide: the ClusterKopfPeering, absent


async def test_a_paused_walk_runs_no_pass_until_the_peer_goes(cluster: Cluster) -> None:
    await peering(cluster, CLUSTER_PEERING, "hoist", {"other": seen(200)})
    metrics = CollectorRegistry()
    walk = PeriodicWalk(gate(cluster), WalkMetrics(metrics))
    passes: list[str] = []

    async def count() -> None:
        passes.append("pass")

    def sample(outcome: str) -> float:
        labels = {"job": "count", "outcome": outcome}
        return metrics.get_sample_value("hoist_operator_walk_passes_total", labels) or 0.0

    walk.start([Job("count", 0.05, count)])
    try:

        async def paused_a_few_times() -> bool:
            return sample("paused") >= 5

        await eventually(paused_a_few_times, what="several paused passes")
        assert passes == []
        assert sample("ran") == 0
        # the other replica leaves the peering (kopf removes its entry on exit)
        await cluster.kube.merge_patch(CLUSTER_PEERING.named("hoist"), {"status": {"other": None}})

        async def running() -> bool:
            return len(passes) >= 2

        await eventually(running, what="the walk running again")
        assert sample("ran") >= 2
    finally:
        await walk.stop()
    stopped_at = len(passes)
    await asyncio.sleep(0.2)  # four intervals: a stopped walk stays stopped
    assert len(passes) == stopped_at


async def test_a_failing_pass_does_not_stop_the_job(cluster: Cluster) -> None:
    metrics = CollectorRegistry()
    walk = PeriodicWalk(gate(cluster, standalone=True), WalkMetrics(metrics))
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the first pass fails")

    walk.start([Job("flaky", 0.05, flaky)])
    try:

        async def recovered() -> bool:
            return len(calls) >= 3

        await eventually(recovered, what="passes after a failing one")
    finally:
        await walk.stop()
    labels = {"job": "flaky", "outcome": "error"}
    assert metrics.get_sample_value("hoist_operator_walk_passes_total", labels) == 1
