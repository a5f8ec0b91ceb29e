"""Two operator replicas against one API: kopf peering lets only the higher priority work."""

from __future__ import annotations

from typing import Any

from control_plane.kube import cluster_ref
from tests.support.fake_sidecar import fake_sidecars
from tests.support.kube_emulator import running_emulator
from tests.support.operator_harness import (
    RunningOperator,
    cluster_client,
    eventually,
    fast_settings,
    operator_in_thread,
)

PEERINGS = cluster_ref("clusterkopfpeerings")


def walk(replica: RunningOperator, job: str, outcome: str) -> float:
    return replica.sample("hoist_operator_walk_passes_total", {"job": job, "outcome": outcome})


def lora(placement: int | str = "all") -> dict[str, Any]:
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "LoraAdapter",
        "metadata": {"name": "sql", "namespace": "default"},
        "spec": {
            "baseModel": "base",
            "source": "/adapters/sql",
            "placement": {"replicas": placement},
        },
    }


async def test_two_replicas_do_not_fight_and_the_second_takes_over() -> None:
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(2) as sidecars,
    ):
        await cluster.kube.create(
            PEERINGS,
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "ClusterKopfPeering",
                "metadata": {"name": "hoist"},
            },
        )

        def replica(priority: int) -> Any:
            return operator_in_thread(
                url,
                fast_settings(standalone=False, peering_mandatory=True, peering_priority=priority),
            )

        high_replica = replica(200)
        high = await high_replica.__aenter__()  # the first one up; stopped by hand below
        stopped = False
        try:
            async with replica(100) as low:

                async def both_seen() -> bool:
                    doc = await cluster.kube.get(PEERINGS.named("hoist"))
                    return len((doc or {}).get("status") or {}) >= 2

                await eventually(both_seen, what="both replicas in the peering")
                await cluster.apply(
                    "models",
                    {
                        "apiVersion": "serving.hoist.dev/v1alpha1",
                        "kind": "Model",
                        "metadata": {"name": "base", "namespace": "default"},
                        "spec": {"source": "/m", "engine": "sim", "replicas": 2},
                    },
                )
                await cluster.add_pod("base-0", "base", sidecars[0])
                await cluster.add_pod("base-1", "base", sidecars[1])
                await cluster.apply("loraadapters", lora())

                async def ready() -> bool:
                    doc = await cluster.get("loraadapters", "sql")
                    return ((doc or {}).get("status") or {}).get("phase") == "Ready"

                await eventually(ready, what="adapter Ready")
                assert (
                    high.sample(
                        "hoist_operator_reconciles_total", {"kind": "LoraAdapter", "result": "ok"}
                    )
                    > 0
                )
                assert (
                    low.sample(
                        "hoist_operator_reconciles_total", {"kind": "LoraAdapter", "result": "ok"}
                    )
                    == 0
                )
                assert (
                    low.sample("hoist_operator_reconciles_total", {"kind": "Model", "result": "ok"})
                    == 0
                )
                assert sidecars[0].puts("sql") == 1
                assert sidecars[1].puts("sql") == 1

                # the periodic walk (no kopf timer) pauses with the handlers: the low
                # replica's passes all found the high one working, and did nothing
                async def low_walk_paused() -> bool:
                    return (
                        walk(low, "adapters", "paused") >= 3 and walk(low, "models", "paused") >= 1
                    )

                await eventually(low_walk_paused, what="the low replica's walk paused")
                assert walk(high, "adapters", "ran") > 0
                for job in ("tenants", "models", "adapters", "sweep", "autoscale"):
                    assert walk(low, job, "ran") == 0, job

                # the high-priority replica leaves: the other one takes over
                stopped = True
                await high_replica.__aexit__(None, None, None)
                await cluster.patch("loraadapters", "sql", {"spec": {"placement": {"replicas": 1}}})

                async def shrunk() -> bool:
                    doc = await cluster.get("loraadapters", "sql")
                    status = (doc or {}).get("status") or {}
                    return status.get("desiredReplicas") == 1 and status.get("readyReplicas") == 1

                await eventually(shrunk, what="the remaining replica handles the change")
                taken_over = low.sample(
                    "hoist_operator_reconciles_total", {"kind": "LoraAdapter", "result": "ok"}
                )
                assert taken_over > 0

                async def low_walks() -> bool:
                    return walk(low, "adapters", "ran") > 0

                await eventually(low_walks, what="the remaining replica's walk running")
                assert len(sidecars[0].loaded() | sidecars[1].loaded()) == 1
                assert sidecars[0].loaded() != sidecars[1].loaded()
        finally:
            if not stopped:
                await high_replica.__aexit__(None, None, None)
