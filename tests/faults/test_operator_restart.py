"""The operator killed in the middle of a reconcile, and a new one started: it converges.

The real operator (kopf) runs against the Kubernetes API emulator; pods are fake sidecars
(real HTTP on 127.0.0.1). The first operator is cancelled while a sidecar holds its
adapter load (so a handler is mid-flight, kopf's progress annotations half-written); the
second must finish the job: the Model's Deployment and status, the adapter Ready on every
pod, loaded exactly once where it should be.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import kopf
from prometheus_client import CollectorRegistry

from control_plane.api.constants import FINALIZER
from control_plane.kube import apps_ref, core_ref
from control_plane.operator.app import run
from tests.support.fake_sidecar import fake_sidecars
from tests.support.kube_emulator import running_emulator
from tests.support.operator_harness import (
    NS,
    cluster_client,
    eventually,
    fast_settings,
    operator_running,
)

MODEL = {
    "apiVersion": "serving.hoist.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "base", "namespace": NS},
    "spec": {"source": "/models/base", "engine": "sim", "replicas": 2},
}
ADAPTER = {
    "apiVersion": "serving.hoist.dev/v1alpha1",
    "kind": "LoraAdapter",
    "metadata": {"name": "sql", "namespace": NS},
    "spec": {"baseModel": "base", "source": "/adapters/sql", "placement": {"replicas": "all"}},
}


async def test_an_operator_killed_mid_reconcile_is_replaced_and_converges() -> None:
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(2) as sidecars,
    ):
        hold = asyncio.Event()
        sidecars[0].hold = hold  # its load hangs: the reconcile is in flight when killed
        await cluster.add_pod("base-0", "base", sidecars[0])
        await cluster.add_pod("base-1", "base", sidecars[1])
        await cluster.apply("models", MODEL)
        await cluster.apply("loraadapters", ADAPTER)

        stop, ready = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(
            run(
                fast_settings(),
                connection=kopf.ConnectionInfo(server=url, token="test"),
                metrics_registry=CollectorRegistry(),
                stop_flag=stop,
                ready_flag=ready,
            )
        )
        try:
            await asyncio.wait_for(sidecars[0].put_arrived.wait(), timeout=30)
        finally:
            first.cancel()  # killed, not stopped: no graceful shutdown
            with contextlib.suppress(asyncio.CancelledError):
                await first
        assert sidecars[0].loaded() == set()  # the kill landed before the load finished
        hold.set()  # the pod's sidecar is healthy again for whoever asks next

        async with operator_running(url, fast_settings()):

            async def converged() -> bool:
                doc = await cluster.get("loraadapters", "sql")
                status: dict[str, Any] = (doc or {}).get("status") or {}
                pods = {entry["pod"] for entry in status.get("loadedOn", [])}
                return status.get("phase") == "Ready" and pods == {"base-0", "base-1"}

            await eventually(converged, what="the adapter Ready on both pods")
            for sidecar in sidecars:
                assert sidecar.loaded() == {"sql"}
            adapter = await cluster.get("loraadapters", "sql")
            assert adapter is not None
            assert FINALIZER in adapter["metadata"].get("finalizers", [])

            deployment = await cluster.kube.get(apps_ref(NS, "deployments", "base"))
            assert deployment is not None and deployment["spec"]["replicas"] == 2
            assert await cluster.kube.get(core_ref(NS, "services", "base")) is not None

            async def model_reported() -> bool:
                doc = await cluster.get("models", "base")
                status = (doc or {}).get("status") or {}
                types = {c["type"] for c in status.get("conditions", [])}
                return {"SpecValid", "Ready", "EngineStable"} <= types

            await eventually(model_reported, what="the Model's status written")
        # The new operator did not repeat the half-done work more than needed: at most
        # one extra PUT per pod (the interrupted one, then the one that succeeded).
        assert sidecars[0].puts("sql") <= 3
        assert sidecars[1].puts("sql") <= 2


async def test_engine_restarts_reach_the_models_status() -> None:
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(1) as sidecars,
    ):
        await cluster.add_pod("base-0", "base", sidecars[0])
        await cluster.apply("models", MODEL)
        async with operator_running(url, fast_settings()):

            async def stable() -> bool:
                doc = await cluster.get("models", "base")
                status = (doc or {}).get("status") or {}
                return status.get("engineRestarts") == 0

            await eventually(stable, what="engineRestarts 0")
            # The kubelet killed the engine container after its liveness probe failed.
            await cluster.kube.merge_patch(
                core_ref(NS, "pods", "base-0").status_of(),
                {
                    "status": {
                        "containerStatuses": [
                            {
                                "name": "engine",
                                "restartCount": 1,
                                "lastState": {
                                    "terminated": {
                                        "exitCode": 137,
                                        "reason": "Error",
                                        "finishedAt": datetime.now(UTC).isoformat(),
                                    }
                                },
                            }
                        ]
                    }
                },
            )

            async def restarted() -> bool:
                doc = await cluster.get("models", "base")
                status = (doc or {}).get("status") or {}
                engine = [c for c in status.get("conditions", []) if c["type"] == "EngineStable"]
                return (
                    status.get("engineRestarts") == 1
                    and bool(engine)
                    and (engine[0]["status"] == "False" and "base-0" in engine[0]["message"])
                )

            await eventually(restarted, what="engineRestarts 1 and EngineStable False")
