"""The operators' `KubeClient` (lightkube) against the emulator: answers mapped as callers expect."""

from __future__ import annotations

import socket

import kopf
import pytest

from control_plane.kube import KubeClient, KubeError, apps_ref, core_ref, hoist_ref
from tests.support.kube_emulator import running_emulator

NS = "default"


def deployment(name: str, replicas: int) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas},
    }


async def test_get_list_create_patch_apply_delete() -> None:
    async with running_emulator() as (emulator, url):
        info = kopf.ConnectionInfo(server=url, token="test")
        async with KubeClient.connect(info, field_manager="hoist-operator") as kube:
            deployments = apps_ref(NS, "deployments")
            assert await kube.get(deployments.named("web")) is None  # 404 is None
            created = await kube.create(deployments, deployment("web", 1))
            assert created["metadata"]["namespace"] == NS  # taken from the ref
            with pytest.raises(KubeError) as conflict:
                await kube.create(deployments, deployment("web", 1))
            assert conflict.value.conflict and not conflict.value.temporary
            applied = await kube.apply(deployments, deployment("web", 3))  # 409 -> merge-patch
            assert applied["spec"]["replicas"] == 3
            await kube.create(deployments, deployment("api", 1))
            listed = await kube.list(deployments, label_selector="app=web")
            assert [d["metadata"]["name"] for d in listed] == ["web"]
            await kube.delete(deployments.named("web"))
            assert await kube.get(deployments.named("web")) is None
            with pytest.raises(KubeError) as gone:
                await kube.delete(deployments.named("web"))
            assert gone.value.not_found
        agents = {r.headers.get("User-Agent") for r in list(emulator)}
        assert agents == {"hoist-operator"}


async def test_status_goes_through_the_subresource_and_invalid_specs_are_422() -> None:
    async with running_emulator() as (_, url):
        info = kopf.ConnectionInfo(server=url, token="test")
        async with KubeClient.connect(info) as kube:
            models = hoist_ref(NS, "models")
            body = {
                "apiVersion": "serving.hoist.dev/v1alpha1",
                "kind": "Model",
                "metadata": {"name": "m"},
                "spec": {"source": "/m", "engine": "sim"},
            }
            await kube.create(models, body)
            patched = await kube.merge_patch(
                models.named("m").status_of(), {"status": {"phase": "Ready"}}
            )
            assert patched["status"]["phase"] == "Ready"
            with pytest.raises(KubeError) as invalid:
                await kube.create(
                    models, {**body, "metadata": {"name": "x"}, "spec": {"engine": "nope"}}
                )
            assert invalid.value.status == 422
            assert "spec.source" in invalid.value.message


async def test_no_answer_is_a_temporary_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    info = kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token="test")
    async with KubeClient.connect(info, timeout_seconds=2) as kube:
        with pytest.raises(KubeError) as unreachable:
            await kube.get(core_ref(NS, "pods", "p"))
    assert unreachable.value.status == 0 and unreachable.value.temporary
