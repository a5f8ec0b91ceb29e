"""Tenancy through the official OpenAI SDK: one key per tenant against the real gateway.

The gateway runs with local discovery against an admin API (the embedded default's
contract) and vLLM-shaped engines; the engines record the bodies they receive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest

from data_plane.gateway.tenancy.upstream import cache_salt
from tests.support.fake_admin import FakeAdmin
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway

KEY_A = "sk-alpha-6f1c2d9e8b7a"
KEY_B = "sk-bravo-0a9b8c7d6e5f"
OPERATOR_KEY = "sk-operator-123456789"
KEYS = (KEY_A, KEY_B, OPERATOR_KEY)

TENANTS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  allowedModels: ["llama", "shared-*"]
  quotas: {requestsPerMinute: 1000, concurrentRequests: 2}
  apiKeysSecret: {name: team-a-keys}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-b}
spec:
  allowedModels: ["*"]
  quotas: {requestsPerMinute: 3}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Model
metadata: {name: skipped-by-the-gateway}
spec: {source: x}
"""


def _adapter(name: str, tenant: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"baseModel": "llama", "source": f"/adapters/{name}"}
    if tenant is not None:
        spec["tenant"] = tenant
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "LoraAdapter",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"phase": "Ready"},
    }


@pytest.fixture
async def engines() -> AsyncIterator[tuple[FakeVllm, FakeVllm]]:
    shared = FakeVllm("llama", adapters=("shared-sql", "a-secret", "b-secret"), tokens=4)
    dedicated = FakeVllm("b-only", tokens=4)
    for e in (shared, dedicated):
        await e.start()
    yield shared, dedicated
    for e in (shared, dedicated):
        await e.stop()


@pytest.fixture
async def admin(engines: tuple[FakeVllm, FakeVllm]) -> AsyncIterator[FakeAdmin]:
    shared, dedicated = engines
    a = FakeAdmin()
    a.add_model("llama", [shared.url], adapters=("shared-sql", "a-secret", "b-secret"))
    a.add_model("b-only", [dedicated.url], tenant="team-b")
    a.adapters = {
        "shared-sql": _adapter("shared-sql", None),
        "a-secret": _adapter("a-secret", "team-a"),
        "b-secret": _adapter("b-secret", "team-b"),
    }
    await a.start()
    yield a
    await a.stop()


@pytest.fixture
async def gw(admin: FakeAdmin, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(TENANTS)
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# tenant: key\nteam-a: {KEY_A}\nteam-b: {KEY_B}\n")
    async with run_gateway(
        discovery="local",
        admin_url=admin.url,
        tenants_files=[tenants],
        tenant_keys_file=keys,
        api_keys=[OPERATOR_KEY],
        adapter_source_roots=["/x", "/y"],
    ) as running:
        yield running


def _client(gw: RunningGateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


async def _ids(client: openai.AsyncOpenAI) -> set[str]:
    return {m.id async for m in client.models.list()}


async def test_missing_or_unknown_keys_are_401(gw: RunningGateway) -> None:
    async with _client(gw, "sk-unknown-key-000000") as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.completions.create(model="llama", prompt="x", max_tokens=1)
        assert info.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/completions", "/v1/chat/completions", "/v1/models", "/v1/adapters"):
            method = "GET" if path in ("/v1/models", "/v1/adapters") else "POST"
            async with http.request(method, gw.url + path, json={"model": "llama"}) as resp:
                assert resp.status == 401, path
                error = (await resp.json())["error"]
                assert error["type"] == "authentication_error"


async def test_models_lists_only_what_the_caller_may_use(gw: RunningGateway) -> None:
    async with _client(gw, KEY_A) as a, _client(gw, KEY_B) as b, _client(gw, OPERATOR_KEY) as op:
        assert await _ids(a) == {"llama", "shared-sql", "a-secret"}
        assert await _ids(b) == {"llama", "b-only", "shared-sql", "b-secret"}
        assert await _ids(op) == {"llama", "b-only", "shared-sql", "a-secret", "b-secret"}
        with pytest.raises(openai.NotFoundError):
            await a.models.retrieve("b-secret")


async def test_not_allowed_is_403_and_anothers_own_is_404(
    gw: RunningGateway, engines: tuple[FakeVllm, FakeVllm]
) -> None:
    async with _client(gw, KEY_A) as a, _client(gw, KEY_B) as b:
        reply = await a.completions.create(model="a-secret", prompt="x", max_tokens=1)
        assert reply.choices[0].text == "t0"
        # b's dedicated model and b's adapter: as if they did not exist
        for model in ("b-only", "b-secret"):
            with pytest.raises(openai.NotFoundError) as info:
                await a.completions.create(model=model, prompt="x", max_tokens=1)
            assert info.value.code == "model_not_found"
        # a's own adapter is invisible to b, whatever b's allowedModels say
        with pytest.raises(openai.NotFoundError):
            await b.chat.completions.create(
                model="a-secret", messages=[{"role": "user", "content": "x"}]
            )
        # b-only exists for b
        reply = await b.completions.create(model="b-only", prompt="x", max_tokens=1)
        assert reply.choices[0].text == "t0"
    async with _client(gw, KEY_A) as a:
        engines[0].adapters.add("other")
        with pytest.raises(openai.NotFoundError):
            await a.completions.create(model="no-such-model", prompt="x", max_tokens=1)


async def test_shared_model_outside_allowed_models_is_403(
    admin: FakeAdmin, engines: tuple[FakeVllm, FakeVllm], gw: RunningGateway
) -> None:
    admin.models[0]["replicas"][0]["adapters"].append("plain")
    engines[0].adapters.add("plain")
    admin.adapters["plain"] = _adapter("plain", None)
    await gw.gateway.refresh()
    async with _client(gw, KEY_A) as a:
        with pytest.raises(openai.PermissionDeniedError) as info:
            await a.completions.create(model="plain", prompt="x", max_tokens=1)
        assert info.value.code == "model_not_allowed"
        assert "plain" not in await _ids(a)


async def test_cache_salt_is_per_tenant(
    gw: RunningGateway, engines: tuple[FakeVllm, FakeVllm]
) -> None:
    async with _client(gw, KEY_A) as a, _client(gw, KEY_B) as b, _client(gw, OPERATOR_KEY) as op:
        for client in (a, b, op):
            await client.completions.create(
                model="llama", prompt="same prompt", max_tokens=1, extra_body={"cache_salt": "x"}
            )
    salts = [orjson.loads(body).get("cache_salt") for body in engines[0].bodies]
    assert salts == [cache_salt("team-a"), cache_salt("team-b"), "x"]


async def test_requests_per_minute_quota_is_429_with_retry_after(gw: RunningGateway) -> None:
    async with _client(gw, KEY_B) as b, _client(gw, KEY_A) as a:
        for _ in range(3):
            await b.completions.create(model="llama", prompt="x", max_tokens=1)
        with pytest.raises(openai.RateLimitError) as info:
            await b.completions.create(model="llama", prompt="x", max_tokens=1)
        assert info.value.code == "tenant_quota_exceeded"
        assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
        # the other tenant is not affected
        await a.completions.create(model="llama", prompt="x", max_tokens=1)
    text = (await _metrics(gw)).decode()
    assert 'gateway_tenant_throttled_total{quota="requests_per_minute",tenant="team-b"} 1.0' in text
    assert 'gateway_tenant_requests_total{tenant="team-b"} 3.0' in text


async def test_concurrent_requests_quota(
    gw: RunningGateway, engines: tuple[FakeVllm, FakeVllm]
) -> None:
    engines[0].token_delay_s = 0.2
    async with _client(gw, KEY_A) as a:
        streams = [
            await a.completions.create(model="llama", prompt="x", max_tokens=4, stream=True)
            for _ in range(2)
        ]
        with pytest.raises(openai.RateLimitError) as info:
            await a.completions.create(model="llama", prompt="x", max_tokens=1)
        assert "concurrent requests" in info.value.message
        for stream in streams:
            async for _ in stream:
                pass
        await a.completions.create(model="llama", prompt="x", max_tokens=1)


async def test_streams_are_charged_real_usage_and_the_usage_event_is_hidden(
    gw: RunningGateway, engines: tuple[FakeVllm, FakeVllm]
) -> None:
    async with _client(gw, KEY_A) as a:
        stream = await a.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
        chunks = [c async for c in stream]
        assert all(c.usage is None for c in chunks)
        assert all(c.choices for c in chunks)  # no usage-only chunk reached the client
        stream = await a.chat.completions.create(
            model="llama",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens == 11
        await a.completions.create(model="llama", prompt="x", max_tokens=4)
    asked = [orjson.loads(body)["stream_options"] for body in engines[0].bodies[:2]]
    assert asked == [{"include_usage": True}] * 2
    text = (await _metrics(gw)).decode()
    assert 'gateway_tenant_tokens_total{tenant="team-a"} 33.0' in text  # 3 x (7 + 4)


async def test_tokens_per_minute_quota(admin: FakeAdmin, tmp_path: Path) -> None:
    tenants = tmp_path / "t.yaml"
    tenants.write_text(
        "apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {name: small}\n"
        "spec: {quotas: {tokensPerMinute: 15}}\n"
    )
    keys = tmp_path / "k.txt"
    keys.write_text(f"small: {KEY_A}\n")
    async with (
        run_gateway(
            discovery="local", admin_url=admin.url, tenants_files=[tenants], tenant_keys_file=keys
        ) as gw,
        _client(gw, KEY_A) as a,
    ):
        await a.completions.create(model="llama", prompt="x", max_tokens=4)  # 11 tokens
        stream = await a.completions.create(model="llama", prompt="x", max_tokens=4, stream=True)
        assert len([c async for c in stream]) == 4  # 22 now: over the 15
        with pytest.raises(openai.RateLimitError) as info:
            await a.completions.create(model="llama", prompt="x", max_tokens=4)
        assert "tokens per minute" in info.value.message


async def test_adapters_belong_to_their_creators_tenant(
    gw: RunningGateway, admin: FakeAdmin
) -> None:
    async with aiohttp.ClientSession() as http:

        async def call(
            method: str, path: str, key: str, body: object = None
        ) -> aiohttp.ClientResponse:
            headers = {"authorization": f"Bearer {key}"}
            async with http.request(method, gw.url + path, json=body, headers=headers) as resp:
                await resp.read()
                return resp

        created = await call(
            "POST", "/v1/adapters", KEY_A, {"name": "a-new", "baseModel": "llama", "source": "/x"}
        )
        assert created.status == 201
        assert admin.adapters["a-new"]["spec"]["tenant"] == "team-a"
        assert (await call("GET", "/v1/adapters/a-new", KEY_A)).status == 200
        for method in ("GET", "DELETE"):
            assert (await call(method, "/v1/adapters/a-new", KEY_B)).status == 404
            assert (await call(method, "/v1/adapters/b-secret", KEY_A)).status == 404
        # b cannot take over a's adapter by writing the same name, nor claim another tenant
        put = await call("PUT", "/v1/adapters/a-new", KEY_B, {"baseModel": "llama", "source": "/y"})
        assert put.status == 404
        steal = {"name": "b-made", "baseModel": "llama", "source": "/y", "tenant": "team-a"}
        assert (await call("POST", "/v1/adapters", KEY_B, steal)).status == 201
        assert admin.adapters["b-made"]["spec"]["tenant"] == "team-b"
        async with http.get(
            gw.url + "/v1/adapters", headers={"authorization": f"Bearer {KEY_A}"}
        ) as resp:
            names = {d["metadata"]["name"] for d in (await resp.json())["data"]}
        assert names == {"shared-sql", "a-secret", "a-new"}
        assert (await call("DELETE", "/v1/adapters/a-new", KEY_A)).status == 200
        assert "a-new" not in admin.adapters


async def test_no_key_in_logs_metrics_or_errors(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[bytes] = []
    async with aiohttp.ClientSession() as http:
        for key in (*KEYS, "sk-unknown-key-000000"):
            for model in ("llama", "b-only", "a-secret", "nope"):
                async with http.post(
                    gw.url + "/v1/completions",
                    json={"model": model, "prompt": key, "max_tokens": 1},
                    headers={"authorization": f"Bearer {key}"},
                ) as resp:
                    if resp.status != 200:
                        bodies.append(await resp.read())
        await asyncio.sleep(0)
    assert bodies
    exposed = b"".join(bodies) + await _metrics(gw) + caplog.text.encode()
    for key in KEYS:
        assert key.encode() not in exposed


async def _metrics(gw: RunningGateway) -> bytes:
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}  # metrics are for operators
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.url + "/metrics", headers=operator) as resp,
    ):
        return await resp.read()
