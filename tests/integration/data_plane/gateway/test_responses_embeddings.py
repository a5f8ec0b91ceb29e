"""`/v1/responses` and `/v1/embeddings` through the gateway, in front of simulated engines
(two generating replicas, one pooling engine), with the official SDK as the client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from data_plane.inference.simulator.runner import Fleet
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.simulator import sim_fleet

DIM = 32
KEY = "sk-team-a-0123456789abcdef"
OPERATOR_KEY = "sk-operator-0123456789abcdef"


@pytest.fixture
async def fleets() -> AsyncIterator[tuple[Fleet, Fleet]]:
    async with (
        sim_fleet(replicas=2, profile="tiny", served_model_name="base", time_scale=10.0) as gen,
        sim_fleet(
            profile="tiny", served_model_name="embedder", runner="pooling", embedding_dim=DIM
        ) as pool,
    ):
        yield gen, pool


def _upstreams(fleets: tuple[Fleet, Fleet]) -> list[str]:
    gen, pool = fleets
    return [f"base={gen.urls[0]},{gen.urls[1]}", f"embedder={pool.urls[0]}"]


@pytest.fixture
async def gw(fleets: tuple[Fleet, Fleet]) -> AsyncIterator[RunningGateway]:
    async with run_gateway(discovery="static", upstreams=_upstreams(fleets)) as running:
        yield running


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


async def _sample(url: str, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        text = await response.text()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def test_response_plain_counts_tokens(client: openai.AsyncOpenAI, gw: RunningGateway) -> None:
    answer = await client.responses.create(model="base", input="Hello", max_output_tokens=5)
    assert answer.status == "incomplete"
    assert answer.output_text
    assert answer.usage is not None
    assert answer.usage.output_tokens == 5
    assert await _sample(gw.url, "inference_output_tokens_total", model="base") == 5
    assert (
        await _sample(gw.url, "inference_prompt_tokens_total", model="base")
        == answer.usage.input_tokens
    )
    requests = await _sample(gw.url, "inference_requests_total", endpoint="responses")
    assert requests == 1


async def test_response_stream_passes_every_event(
    client: openai.AsyncOpenAI, gw: RunningGateway
) -> None:
    kinds: list[str] = []
    async with client.responses.stream(
        model="base", input=[{"role": "user", "content": "Hi"}], max_output_tokens=4
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 4
    assert final.usage is not None
    assert final.usage.output_tokens == 4
    assert await _sample(gw.url, "inference_output_tokens_total", model="base") == 4


async def test_stored_responses_are_refused_clearly(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="base", input="x", previous_response_id="resp_1")
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "previous_response_id"
    assert "does not store responses" in refused.value.message
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="base", input="x", background=True)
    for call in (client.responses.retrieve, client.responses.delete, client.responses.cancel):
        with pytest.raises(openai.NotFoundError) as missing:
            await call("resp_1")
        assert missing.value.code == "response_not_stored"


async def test_embeddings_two_inputs_two_vectors(client: openai.AsyncOpenAI) -> None:
    answer = await client.embeddings.create(model="embedder", input=["one text", "another"])
    assert len(answer.data) == 2
    assert {len(item.embedding) for item in answer.data} == {DIM}
    assert answer.usage.prompt_tokens > 0
    floats = await client.embeddings.create(
        model="embedder", input="one text", encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(answer.data[0].embedding, rel=1e-5)


async def test_embeddings_from_a_generative_model_is_a_clear_404(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.embeddings.create(model="base", input="x")
    assert caught.value.code == "unsupported_endpoint"
    assert "/v1/embeddings" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model="embedder", messages=[{"role": "user", "content": "x"}]
        )


async def test_tenant_tokens_are_charged_from_responses_and_embeddings_usage(
    fleets: tuple[Fleet, Fleet], tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        "apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team-a}\n"
        "spec: {quotas: {tokensPerMinute: 60}}\n"
    )
    keys = tmp_path / "keys.txt"
    keys.write_text(f"team-a: {KEY}\n")
    async with AsyncExitStack() as stack:
        gw = await stack.enter_async_context(
            run_gateway(
                discovery="static",
                upstreams=_upstreams(fleets),
                tenants_files=[tenants],
                tenant_keys_file=keys,
                api_keys=[OPERATOR_KEY],
            )
        )
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
        )
        plain = await client.responses.create(model="base", input="Hi", max_output_tokens=3)
        async with client.responses.stream(model="base", input="Hi", max_output_tokens=3) as stream:
            streamed = await stream.get_final_response()
        vectors = await client.embeddings.create(model="embedder", input=["a b c", "d e"])
        assert plain.usage is not None
        assert streamed.usage is not None
        charged = plain.usage.total_tokens + streamed.usage.total_tokens
        charged += vectors.usage.total_tokens
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                gw.url + "/metrics", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
            ) as response,
        ):
            text = await response.text()
        assert f'gateway_tenant_tokens_total{{tenant="team-a"}} {float(charged)}' in text
        # Spend the rest of the minute's tokens, then the quota refuses.
        spent = charged
        while spent <= 60:  # each answer charges at least its 8 output tokens
            more = await client.responses.create(model="base", input="Hi", max_output_tokens=8)
            assert more.usage is not None
            spent += more.usage.total_tokens
        with pytest.raises(openai.RateLimitError):
            await client.responses.create(model="base", input="Hi", max_output_tokens=8)
