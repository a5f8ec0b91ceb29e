"""The model manager against the Kubernetes API emulator: Deployment, Service, status."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.api.constants import API_VERSION
from control_plane.kube import KubeError, apps_ref, core_ref
from tests.support.kube_emulator import running_emulator
from tests.support.operator_harness import (
    NS,
    Cluster,
    cluster_client,
    eventually,
    fast_settings,
    operator_running,
)


def model_doc(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"source": "/models/x", "engine": "sim", "replicas": 2}
    base.update(spec)
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": NS},
        "spec": base,
    }


async def model_status(cluster: Cluster, name: str) -> dict[str, Any]:
    doc = await cluster.get("models", name)
    return dict((doc or {}).get("status") or {})


async def test_model_becomes_deployment_and_service_and_status_mirrors_it() -> None:
    async with running_emulator() as (_, url), cluster_client(url) as cluster:
        created = await cluster.apply("models", model_doc("llama"))
        async with operator_running(url, fast_settings()):

            async def deployed() -> bool:
                return await cluster.kube.get(apps_ref(NS, "deployments", "llama")) is not None

            await eventually(deployed, what="Deployment created")
            deployment = await cluster.kube.get(apps_ref(NS, "deployments", "llama"))
            service = await cluster.kube.get(core_ref(NS, "services", "llama"))
            assert deployment is not None
            assert service is not None
            for obj in (deployment, service):
                assert obj["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
            assert deployment["spec"]["replicas"] == 2

            async def loading() -> bool:
                return (await model_status(cluster, "llama")).get("phase") == "Loading"

            await eventually(loading, what="Model Loading")

            # the Deployment controller reports both replicas ready
            await cluster.kube.merge_patch(
                apps_ref(NS, "deployments", "llama").status_of(),
                {"status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2}},
            )

            async def ready() -> bool:
                s = await model_status(cluster, "llama")
                return s.get("phase") == "Ready" and s.get("readyReplicas") == 2

            await eventually(ready, what="Model Ready")

            # a spec change rolls out: new replica count and a new pod template
            old_template = deployment["spec"]["template"]
            await cluster.patch("models", "llama", {"spec": {"replicas": 3, "engineArgs": ["--x"]}})

            async def rolled() -> bool:
                d = await cluster.kube.get(apps_ref(NS, "deployments", "llama"))
                return (
                    d is not None
                    and d["spec"]["replicas"] == 3
                    and d["spec"]["template"] != old_template
                )

            await eventually(rolled, what="Deployment updated")

            async def degraded() -> bool:
                s = await model_status(cluster, "llama")
                return s.get("phase") == "Degraded" and s.get("desiredReplicas") == 3

            await eventually(degraded, what="Model Degraded while the rollout is under way")


async def test_invalid_model_gets_a_condition_and_others_still_work() -> None:
    async with running_emulator() as (emulator, url), cluster_client(url) as cluster:
        bad_doc = model_doc("bad", replicas=5, maxReplicas=2)
        with pytest.raises(KubeError) as refused:  # the CRD's CEL rule refuses it at the door
            await cluster.apply("models", bad_doc)
        assert "replicas must lie within [minReplicas, maxReplicas]" in str(refused.value)
        # one stored before the CRD had that rule: the operator reports it, and goes on
        emulator.store_unchecked(f"{API_VERSION}/models", bad_doc)
        await cluster.apply("models", model_doc("good"))
        async with operator_running(url, fast_settings()):

            async def settled() -> bool:
                bad = await model_status(cluster, "bad")
                good = await cluster.kube.get(apps_ref(NS, "deployments", "good"))
                return bad.get("phase") == "Failed" and good is not None

            await eventually(settled, what="bad Failed, good deployed")
            bad = await model_status(cluster, "bad")
            cond = next(c for c in bad["conditions"] if c["type"] == "SpecValid")
            assert cond["status"] == "False"
            assert "maxReplicas" in cond["message"] or "replicas" in cond["message"]
            assert await cluster.kube.get(apps_ref(NS, "deployments", "bad")) is None
