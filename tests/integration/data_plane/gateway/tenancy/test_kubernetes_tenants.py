"""Kubernetes: Tenants and their key Secrets read from the API (kmock's emulator)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from control_plane.api.constants import API_VERSION, LABEL_MODEL
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway
from tests.support.kube_emulator import running_emulator
from tests.support.waiting import wait_until

NS = "serving"
KEY_A = "sk-kube-alpha-11223344"
KEY_B = "sk-kube-bravo-55667788"


@pytest.fixture
async def api() -> AsyncIterator[str]:
    async with running_emulator() as (_, url):
        yield url


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama")
    await e.start()
    yield e
    await e.stop()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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


async def test_tenant_keys_come_from_secrets(api: str, engine: FakeVllm) -> None:
    port = int(engine.url.rsplit(":", 1)[1])
    hashed_b = hashlib.sha256(KEY_B.encode()).hexdigest()
    async with aiohttp.ClientSession(base_url=api) as http:
        await create(
            http,
            f"/apis/{API_VERSION}/namespaces/{NS}/models",
            {"apiVersion": API_VERSION, "kind": "Model",
             "metadata": {"name": "llama", "namespace": NS}, "spec": {"source": "x"}},
        )  # fmt: skip
        await create(
            http,
            f"/api/v1/namespaces/{NS}/pods",
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "llama-0", "namespace": NS, "labels": {LABEL_MODEL: "llama"}},
             "spec": {"containers": [{"name": "engine",
                                      "ports": [{"name": "http", "containerPort": port}]}]},
             "status": {"phase": "Running", "podIP": "127.0.0.1",
                        "conditions": [{"type": "Ready", "status": "True"}]}},
        )  # fmt: skip
        await create(
            http,
            f"/api/v1/namespaces/{NS}/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a-keys", "namespace": NS},
             "data": {"ci": _b64(KEY_A), "broken": _b64("short")}},
        )  # fmt: skip
        for name, secret in (("team-a", "a-keys"), ("team-b", "b-keys")):
            await create(
                http,
                f"/apis/{API_VERSION}/namespaces/{NS}/tenants",
                {"apiVersion": API_VERSION, "kind": "Tenant",
                 "metadata": {"name": name, "namespace": NS},
                 "spec": {"apiKeysSecret": {"name": secret}}},
            )  # fmt: skip
        async with (
            run_gateway(
                discovery="kubernetes", kube_api_url=api, kube_namespace=NS,
                discovery_interval_s=0.05,
            ) as gw,
            openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY_A, max_retries=0) as a,
            openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY_B, max_retries=0) as b,
        ):  # fmt: skip
            reply = await a.completions.create(model="llama", prompt="x", max_tokens=1)
            assert reply.choices[0].text == "t0"
            with pytest.raises(openai.AuthenticationError):  # b's Secret does not exist yet
                await b.completions.create(model="llama", prompt="x", max_tokens=1)
            await create(
                http,
                f"/api/v1/namespaces/{NS}/secrets",
                {"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "b-keys", "namespace": NS},
                 "data": {"ci": _b64(f"sha256:{hashed_b}")}},
            )  # fmt: skip
            await wait_until(lambda: len(gw.gateway.tenancy.keys) == 2)
            reply = await b.completions.create(model="llama", prompt="x", max_tokens=1)
            assert reply.choices[0].text == "t0"
