"""Kubernetes discovery and the adapter API against the Kubernetes API emulator (real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, API_VERSION, LABEL_MODEL
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway
from tests.support.kube_emulator import running_emulator

NS = "serving"


@pytest.fixture
async def api() -> AsyncIterator[str]:
    async with running_emulator() as (_, url):
        yield url


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", adapters=("sql",))
    await e.start()
    yield e
    await e.stop()


def pod(name: str, engine_url: str, *, ready: bool, adapters: str) -> dict[str, Any]:
    port = int(engine_url.rsplit(":", 1)[1])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {LABEL_MODEL: "llama"},
            "annotations": {ANNOTATION_LOADED_ADAPTERS: adapters},
        },
        "spec": {
            "containers": [{"name": "engine", "ports": [{"name": "http", "containerPort": port}]}]
        },
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


async def create(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> None:
    """Create `body`; its `status` is then written through /status, as the kubelet does (the
    API server ignores status on create)."""
    status = body.get("status")
    created = {k: v for k, v in body.items() if k != "status"}
    async with http.post(path, json=created) as resp:
        assert resp.status < 300, await resp.text()
    if status is not None:
        merge = {"Content-Type": "application/merge-patch+json"}
        url = f"{path}/{body['metadata']['name']}/status"
        async with http.patch(url, json={"status": status}, headers=merge) as resp:
            assert resp.status < 300, await resp.text()


async def test_pods_of_a_model_are_its_replicas(api: str, engine: FakeVllm) -> None:
    async with aiohttp.ClientSession(base_url=api) as http:
        model = {
            "apiVersion": API_VERSION,
            "kind": "Model",
            "metadata": {"name": "llama", "namespace": NS},
            "spec": {"source": "x", "routingPolicy": "least-load", "lora": {"maxLoras": 2}},
        }
        await create(http, f"/apis/{API_VERSION}/namespaces/{NS}/models", model)
        await create(
            http,
            f"/api/v1/namespaces/{NS}/pods",
            pod("llama-a", engine.url, ready=True, adapters='["sql"]'),
        )
        await create(
            http,
            f"/api/v1/namespaces/{NS}/pods",
            pod("llama-b", "http://127.0.0.1:9", ready=False, adapters=""),
        )
    async with (
        run_gateway(discovery="kubernetes", kube_api_url=api, kube_namespace=NS) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        reply = await client.completions.create(model="sql", prompt="x", max_tokens=1)
        assert reply.choices[0].text == "t0"
        route = gw.gateway.fleet.models["llama"]
        assert route.policy_name == "least-load"
        assert [(r.name, r.ready) for r in route.replicas] == [
            ("llama-a", True),
            ("llama-b", False),
        ]
        assert {m.id for m in (await client.models.list()).data} == {"llama", "sql"}


async def test_adapter_api_manages_lora_adapter_resources(api: str) -> None:
    async with aiohttp.ClientSession(base_url=api) as http:
        model = {
            "apiVersion": API_VERSION,
            "kind": "Model",
            "metadata": {"name": "llama", "namespace": NS},
            "spec": {"source": "x"},
        }
        await create(http, f"/apis/{API_VERSION}/namespaces/{NS}/models", model)
    async with (
        run_gateway(discovery="kubernetes", kube_api_url=api, kube_namespace=NS) as gw,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        body = {"name": "chat", "baseModel": "llama", "source": "s3://bucket/chat"}
        async with http.post("/v1/adapters", json=body) as resp:
            assert resp.status == 201, await resp.text()
        async with http.post("/v1/adapters", json=body | {"source": "s3://bucket/chat2"}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get("/v1/adapters/chat") as resp:
            stored = await resp.json()
        assert stored["spec"]["source"] == "s3://bucket/chat2"
        async with http.get("/v1/adapters") as resp:
            assert [a["metadata"]["name"] for a in (await resp.json())["data"]] == ["chat"]
        await asyncio.sleep(0)
        async with http.get("/v1/models") as resp:
            ids = {m["id"]: m["parent"] for m in (await resp.json())["data"]}
        assert ids == {"llama": None, "chat": "llama"}
        async with http.delete("/v1/adapters/chat") as resp:
            assert resp.status == 200
        async with http.get("/v1/adapters/chat") as resp:
            assert resp.status == 404
            assert "message" in (await resp.json())["error"]


async def test_models_in_more_namespaces_are_served_under_unique_names(
    api: str, engine: FakeVllm
) -> None:
    """A tenant's dedicated Model lives in its own namespace (its GPU quota); the gateway
    serves it beside the shared ones, and a name already taken is not served twice."""
    team = FakeVllm("team-model")
    await team.start()
    try:
        async with aiohttp.ClientSession(base_url=api) as http:
            for ns, name in ((NS, "llama"), ("tenant-a", "team-model"), ("tenant-a", "llama")):
                model = {
                    "apiVersion": API_VERSION,
                    "kind": "Model",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"source": "x"},
                }
                await create(http, f"/apis/{API_VERSION}/namespaces/{ns}/models", model)
            await create(
                http,
                f"/api/v1/namespaces/{NS}/pods",
                pod("llama-a", engine.url, ready=True, adapters=""),
            )
            team_pod = pod("team-model-a", team.url, ready=True, adapters="")
            team_pod["metadata"] |= {"namespace": "tenant-a", "labels": {LABEL_MODEL: "team-model"}}
            await create(http, "/api/v1/namespaces/tenant-a/pods", team_pod)
            impostor = pod("llama-x", "http://127.0.0.1:9", ready=True, adapters="")
            impostor["metadata"]["namespace"] = "tenant-a"
            await create(http, "/api/v1/namespaces/tenant-a/pods", impostor)
        async with (
            run_gateway(
                discovery="kubernetes",
                kube_api_url=api,
                kube_namespace=NS,
                kube_model_namespaces="tenant-a",
            ) as gw,
            openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
        ):
            assert {m.id for m in (await client.models.list()).data} == {"llama", "team-model"}
            for _ in range(4):
                await client.completions.create(model="llama", prompt="x", max_tokens=1)
            await client.completions.create(model="team-model", prompt="x", max_tokens=1)
            assert [r.name for r in gw.gateway.fleet.models["llama"].replicas] == ["llama-a"]
        assert engine.requests == 4
        assert team.requests == 1
    finally:
        await team.stop()
