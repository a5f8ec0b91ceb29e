"""The probes of docs/security.md against the real gateway, with two tenants and an operator.

Names are resolved by a stub (the policy's judgement of an address is what is tested, and
nothing here connects anywhere but 127.0.0.1); the engines are vLLM-shaped stand-ins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from tests.support.fake_admin import FakeAdmin
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway

KEY_A = "sk-alpha-6f1c2d9e8b7a"
KEY_B = "sk-bravo-0a9b8c7d6e5f"
OPERATOR_KEY = "sk-operator-123456789"
METRICS_TOKEN = "metrics-token-0123456789"

TENANTS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  allowedModels: ["llama"]
  quotas: {maxRequestTokens: 64}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-b}
spec:
  adapterSources: {schemes: [https], allowedHosts: ["models.team-b.example"]}
"""

# What the stub resolver answers: a public name, and names that lead inside the network.
DNS = {
    "models.example.com": ["93.184.216.34"],
    "rebind.example.com": ["93.184.216.34", "10.0.0.8"],
    "metadata.example.com": ["169.254.169.254"],
    "models.team-b.example": ["10.1.2.3"],  # listed for team-b by the operator: trusted
}


async def stub_resolver(host: str) -> list[str]:
    return DNS.get(host, [])


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    engine = FakeVllm("llama", adapters=("sql-lora",), tokens=4)
    await engine.start()
    admin = FakeAdmin()
    admin.add_model("llama", [engine.url], adapters=("sql-lora",))
    admin.add_model("b-dedicated", [engine.url], tenant="team-b")
    await admin.start()
    (tmp_path / "tenants.yaml").write_text(TENANTS)
    (tmp_path / "keys.txt").write_text(f"team-a: {KEY_A}\nteam-b: {KEY_B}\n")
    (tmp_path / "metrics-token").write_text(METRICS_TOKEN + "\n")
    install = tmp_path / "shared" / "home" / "adapters"  # inside a root: still refused
    try:
        async with run_gateway(
            discovery="local",
            admin_url=admin.url,
            tenants_files=[tmp_path / "tenants.yaml"],
            tenant_keys_file=tmp_path / "keys.txt",
            api_keys=[OPERATOR_KEY],
            metrics_token_file=tmp_path / "metrics-token",
            adapter_source_roots=[f"{tmp_path}/shared", f"{tmp_path}/tenants/{{tenant}}"],
            adapter_install_dirs=[str(install)],
        ) as running:
            running.gateway.sources.resolver = stub_resolver
            yield running
    finally:
        await admin.stop()
        await engine.stop()


def _client(gw: RunningGateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


async def _post(gw: RunningGateway, key: str, name: str, source: str) -> openai.APIStatusError:
    async with _client(gw, key) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.post(
                "/adapters",
                body={"name": name, "baseModel": "llama", "source": source},
                cast_to=object,
            )
    return refused.value


async def _created(gw: RunningGateway, key: str, name: str, source: str) -> None:
    async with _client(gw, key) as client:
        created = await client.post(
            "/adapters", body={"name": name, "baseModel": "llama", "source": source}, cast_to=object
        )
    assert isinstance(created, dict)
    assert created["spec"]["source"] == source


@pytest.mark.parametrize(
    ("source", "code"),
    [
        # weights by path: another tenant's installed copy, any readable directory
        pytest.param("{install}/llama-0/adapters/sql-lora/0123abcd", "path_not_allowed", id="copy"),
        pytest.param("/etc", "path_not_allowed", id="any-directory"),
        pytest.param("{tmp}/tenants/team-b/weights", "path_not_allowed", id="other-prefix"),
        pytest.param("{tmp}/shared/../etc", "invalid_source", id="dotdot"),
        pytest.param("{tmp}/shared/home", "path_not_allowed", id="holds-the-install-dir"),
        # the loader as a probe: loopback, the admin API, names that resolve inside
        pytest.param("http://127.0.0.1:8079/v1/state", "scheme_not_allowed", id="plain-http"),
        pytest.param("https://127.0.0.1:8079/v1/state", "address_not_allowed", id="admin-api"),
        pytest.param("https://[::1]/a.tar", "address_not_allowed", id="loopback-v6"),
        pytest.param("https://metadata.example.com/x", "address_not_allowed", id="metadata"),
        pytest.param("https://rebind.example.com/x", "address_not_allowed", id="one-private"),
        pytest.param("https://nowhere.example.com/x", "host_not_resolved", id="unresolved"),
        pytest.param("https://u:p@models.example.com/x", "invalid_source", id="credentials"),
    ],
)
async def test_a_tenant_cannot_name_a_source_the_policy_refuses(
    gw: RunningGateway, tmp_path: Path, source: str, code: str
) -> None:
    source = source.format(install=tmp_path / "shared" / "home" / "adapters", tmp=tmp_path)
    refused = await _post(gw, KEY_A, "probe", source)
    assert refused.status_code == 422
    assert refused.code == code
    body = refused.body
    assert isinstance(body, dict)
    assert body["param"] == "source"
    assert body["type"] == "invalid_request_error"
    assert "10.0.0.8" not in refused.message and "169.254" not in refused.message


async def test_allowed_sources_are_accepted(gw: RunningGateway, tmp_path: Path) -> None:
    await _created(gw, KEY_A, "a-public", "https://models.example.com/a.tar.gz")
    await _created(gw, KEY_A, "a-own", f"{tmp_path}/tenants/team-a/weights")
    await _created(gw, KEY_A, "a-shared", f"{tmp_path}/shared/weights")
    await _created(gw, OPERATOR_KEY, "op-s3", "s3://bucket/adapters/x.tar")


async def test_a_tenants_own_policy_replaces_the_gateways(gw: RunningGateway) -> None:
    await _created(gw, KEY_B, "b-internal", "https://models.team-b.example/b.tar")  # trusted
    refused = await _post(gw, KEY_B, "b-public", "https://models.example.com/a.tar.gz")
    assert refused.code == "host_not_allowed"
    refused = await _post(gw, KEY_B, "b-s3", "s3://bucket/x.tar")
    assert refused.code == "scheme_not_allowed"
    refused = await _post(gw, KEY_A, "a-internal", "https://models.team-b.example/b.tar")
    assert refused.code == "address_not_allowed"  # not trusted for team-a


async def test_an_adapter_may_not_take_a_models_name(gw: RunningGateway) -> None:
    for name in ("llama", "b-dedicated"):
        refused = await _post(gw, OPERATOR_KEY, name, "https://models.example.com/a.tar.gz")
        assert refused.status_code == 409
        assert refused.code == "conflict"


async def test_metrics_are_for_operators_only(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/metrics") as resp:
            assert resp.status == 401
        async with http.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {KEY_A}"}) as r:
            assert r.status == 403
            text = await r.text()
            assert "b-dedicated" not in text and "team-b" not in text
        for credential in (OPERATOR_KEY, METRICS_TOKEN):
            headers = {"Authorization": f"Bearer {credential}"}
            async with http.get(gw.url + "/metrics", headers=headers) as resp:
                assert resp.status == 200
                assert "b-dedicated" in await resp.text()


async def test_a_tenant_cap_on_generated_tokens(gw: RunningGateway) -> None:
    async with _client(gw, KEY_A) as a, _client(gw, OPERATOR_KEY) as op:
        with pytest.raises(openai.BadRequestError, match="limit of 64") as refused:
            await a.completions.create(model="llama", prompt="x", max_tokens=16, n=5)
        assert refused.value.code == "request_tokens_above_limit"
        assert (await a.completions.create(model="llama", prompt="x", max_tokens=16, n=4)).choices
        assert (await op.completions.create(model="llama", prompt="x", max_tokens=16, n=5)).choices
