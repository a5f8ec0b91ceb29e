"""Which resources the operator holds with a finalizer, proven against the API emulator.

kopf adds its finalizer (Hoist names it `serving.hoist.dev/unload-adapters`) to every
resource that a timer, a daemon or a non-optional delete handler matches. Hoist has no
timers or daemons (the periodic work is the operator's walk over kopf indexes), so only
LoraAdapters, whose delete handler unloads them from the pods, carry it: a Tenant or a
Model is deleted at once, with or without a running operator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from control_plane.api.constants import FINALIZER
from tests.support.fake_sidecar import FakeSidecar, fake_sidecars
from tests.support.kube_emulator import running_emulator
from tests.support.operator_harness import (
    Cluster,
    RunningOperator,
    cluster_client,
    eventually,
    fast_settings,
    operator_running,
)

NS = "default"
# what an operator of the previous design left on its resources
OLD = {"finalizers": [FINALIZER]}


def model(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "serving.hoist.dev/v1alpha1", "kind": "Model",
            "metadata": {"name": name, "namespace": NS, **meta},
            "spec": {"source": "/m", "engine": "sim", "replicas": 1}}  # fmt: skip


def tenant(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "serving.hoist.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name, "namespace": NS, **meta},
            "spec": {"allowedModels": ["base"]}}  # fmt: skip


def adapter(name: str) -> dict[str, Any]:
    return {"apiVersion": "serving.hoist.dev/v1alpha1", "kind": "LoraAdapter",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"baseModel": "base", "source": "/adapters/sql"}}  # fmt: skip


async def finalizers(cluster: Cluster, plural: str, name: str) -> list[str] | None:
    """None: the resource is gone."""
    doc = await cluster.get(plural, name)
    return None if doc is None else list((doc.get("metadata") or {}).get("finalizers") or [])


def ran(operator: RunningOperator, job: str) -> float:
    labels = {"job": job, "outcome": "ran"}
    return operator.sample("hoist_operator_walk_passes_total", labels)


@pytest.fixture
async def env() -> AsyncIterator[tuple[str, Cluster, list[FakeSidecar]]]:
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(1) as sidecars,
    ):
        yield url, cluster, sidecars


async def test_tenants_and_models_go_without_an_operator(
    env: tuple[str, Cluster, list[FakeSidecar]],
) -> None:
    url, cluster, sidecars = env
    await cluster.apply("models", model("base"))
    await cluster.apply("tenants", tenant("team-a"))
    await cluster.add_pod("base-0", "base", sidecars[0])
    async with operator_running(url, fast_settings()) as operator:
        await cluster.apply("loraadapters", adapter("sql"))

        async def handled() -> bool:
            base, team, sql = [
                ((await cluster.get(plural, name)) or {}).get("status") or {}
                for plural, name in (
                    ("models", "base"),
                    ("tenants", "team-a"),
                    ("loraadapters", "sql"),
                )
            ]
            return bool(base.get("phase") and team.get("phase")) and sql.get("phase") == "Ready"

        await eventually(handled, what="the Model, the Tenant and the adapter handled")

        # every periodic job has walked them since (where a timer used to add a finalizer)
        async def walked() -> bool:
            return all(
                ran(operator, job) >= 2 for job in ("tenants", "models", "adapters", "sweep")
            )

        await eventually(walked, what="two passes of every periodic job")
        assert await finalizers(cluster, "models", "base") == []
        assert await finalizers(cluster, "tenants", "team-a") == []
        assert await finalizers(cluster, "loraadapters", "sql") == [FINALIZER]

    # no operator runs now
    await cluster.delete("tenants", "team-a")
    await cluster.delete("models", "base")
    assert await finalizers(cluster, "tenants", "team-a") is None
    assert await finalizers(cluster, "models", "base") is None
    # the adapter waits to be unloaded from the pod that still holds it
    await cluster.delete("loraadapters", "sql")
    left = await cluster.get("loraadapters", "sql")
    assert left is not None and left["metadata"].get("deletionTimestamp")
    assert "sql" in sidecars[0].loaded()

    async with operator_running(url, fast_settings()):

        async def unloaded_and_gone() -> bool:
            return await finalizers(cluster, "loraadapters", "sql") is None

        await eventually(unloaded_and_gone, what="the adapter unloaded and deleted")
    assert "sql" not in sidecars[0].loaded()


async def test_the_finalizer_an_older_operator_left_is_released(
    env: tuple[str, Cluster, list[FakeSidecar]],
) -> None:
    url, cluster, _ = env
    await cluster.apply("models", model("base", **OLD))
    await cluster.apply("tenants", tenant("team-a", **OLD))
    async with operator_running(url, fast_settings()):

        async def released() -> bool:
            return (
                await finalizers(cluster, "models", "base") == []
                and await finalizers(cluster, "tenants", "team-a") == []
            )

        await eventually(released, what="the old finalizers removed")
    await cluster.delete("tenants", "team-a")
    await cluster.delete("models", "base")
    assert await finalizers(cluster, "tenants", "team-a") is None
    assert await finalizers(cluster, "models", "base") is None
