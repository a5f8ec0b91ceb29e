"""The gateway seen through the official OpenAI SDK, in front of real vLLM-shaped engines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import orjson
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway


@pytest.fixture
async def engines() -> AsyncIterator[list[FakeVllm]]:
    started = [FakeVllm("tiny", adapters=("sql-lora",), name=f"e{i}") for i in range(2)]
    for engine in started:
        await engine.start()
    yield started
    for engine in started:
        await engine.stop()


@pytest.fixture
async def gw(engines: list[FakeVllm]) -> AsyncIterator[RunningGateway]:
    urls = ",".join(f"{e.url}#sql-lora" for e in engines)
    async with run_gateway(
        discovery="static", upstreams=[f"tiny={urls}"], queue_timeout_s=0.5
    ) as running:
        yield running


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0) as c:
        yield c


async def test_chat_completion(client: openai.AsyncOpenAI, engines: list[FakeVllm]) -> None:
    reply = await client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert reply.choices[0].message.content == "t0 t1 t2"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3
    assert sum(e.requests for e in engines) == 1


async def test_completion(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(model="tiny", prompt="Once", max_tokens=2)
    assert reply.choices[0].text == "t0 t1"


async def test_streaming_chat_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "t0 t1 t2 t3 "
    assert usage is not None
    assert usage.completion_tokens == 4


async def test_streaming_completion(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(model="tiny", prompt="x", max_tokens=3, stream=True)
    assert "".join([c.choices[0].text async for c in stream]) == "t0 t1 t2 "


async def test_adapter_is_served_by_name(
    client: openai.AsyncOpenAI, engines: list[FakeVllm]
) -> None:
    reply = await client.chat.completions.create(
        model="sql-lora", messages=[{"role": "user", "content": "select"}], max_tokens=1
    )
    assert reply.model == "sql-lora"
    sent = [orjson.loads(b) for e in engines for b in e.bodies]
    assert sent[0]["model"] == "sql-lora"


async def test_models_list_adapters_with_parent(client: openai.AsyncOpenAI) -> None:
    models = {m.id: m for m in (await client.models.list()).data}
    assert set(models) == {"tiny", "sql-lora"}
    assert models["sql-lora"].model_extra is not None
    assert models["sql-lora"].model_extra["parent"] == "tiny"
    assert models["tiny"].model_extra is not None
    assert models["tiny"].model_extra["parent"] is None
    one = await client.models.retrieve("sql-lora")
    assert one.id == "sql-lora"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")


async def test_body_passes_through_unchanged(gw: RunningGateway, engines: list[FakeVllm]) -> None:
    body = (
        b'{"model": "tiny",  "messages": [{"role": "user", "content": "hi"}],'
        b' "x_extra": {"k": [1, 2.50]}}'
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gw.url + "/v1/chat/completions", data=body, headers={"content-type": "application/json"}
        ) as resp,
    ):
        assert resp.status == 200
    assert [b for e in engines for b in e.bodies] == [body]


async def test_request_id_kept_or_made(gw: RunningGateway, engines: list[FakeVllm]) -> None:
    body = orjson.dumps({"model": "tiny", "prompt": "x"})
    async with aiohttp.ClientSession() as session:
        async with session.post(
            gw.url + "/v1/completions", data=body, headers={"x-request-id": "abc-1"}
        ) as resp:
            assert resp.headers["x-request-id"] == "abc-1"
        async with session.post(gw.url + "/v1/completions", data=body) as resp:
            made = resp.headers["x-request-id"]
            assert len(made) == 32
    seen = [h.get("x-request-id") for e in engines for h in e.headers]
    assert sorted(seen) == sorted(["abc-1", made])


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(b"{not json", None, id="malformed-json"),
        pytest.param(b"[1, 2]", None, id="not-an-object"),
        pytest.param(
            b'{"messages": [{"role": "user", "content": "x"}]}', "model", id="missing-model"
        ),
        pytest.param(b'{"model": 5, "messages": []}', "model", id="model-not-a-string"),
        pytest.param(b'{"model": "tiny", "messages": "hi"}', "messages", id="messages-not-a-list"),
        pytest.param(
            b'{"model": "tiny", "messages": [{"role": "user"}], "stream": "yes"}',
            "stream",
            id="stream-not-bool",
        ),
        pytest.param(b"", None, id="empty"),
    ],
)
async def test_bad_requests_are_400_in_openai_shape(
    gw: RunningGateway, body: bytes, param: str | None
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(gw.url + "/v1/chat/completions", data=body) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_sdk_raises_bad_request(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="tiny", messages=[])


async def test_oversized_body_is_413(engines: list[FakeVllm]) -> None:
    async with (
        run_gateway(
            discovery="static", upstreams=[f"tiny={engines[0].url}"], max_body_bytes=2048
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        with pytest.raises(openai.APIStatusError) as info:
            await client.completions.create(model="tiny", prompt="x" * 5000)
        assert info.value.status_code == 413
        assert engines[0].requests == 0


async def test_api_keys_are_checked(engines: list[FakeVllm]) -> None:
    async with run_gateway(
        discovery="static", upstreams=[f"tiny={engines[0].url}"], api_keys=["s3cret"]
    ) as gw:
        async with openai.AsyncOpenAI(
            base_url=gw.url + "/v1", api_key="wrong", max_retries=0
        ) as client:
            with pytest.raises(openai.AuthenticationError):
                await client.completions.create(model="tiny", prompt="x")
            with pytest.raises(openai.AuthenticationError):
                await client.models.list()
        async with openai.AsyncOpenAI(
            base_url=gw.url + "/v1", api_key="s3cret", max_retries=0
        ) as client:
            assert (await client.completions.create(model="tiny", prompt="x")).choices


async def test_unknown_path_and_method_have_openai_shape(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(gw.url + "/v1/nothing") as resp:
            assert resp.status == 404
            assert "message" in (await resp.json())["error"]
        async with session.delete(gw.url + "/v1/models") as resp:
            assert resp.status == 405
            assert "message" in (await resp.json())["error"]


async def test_health_ready_and_metrics(gw: RunningGateway, client: openai.AsyncOpenAI) -> None:
    await client.completions.create(model="tiny", prompt="x", max_tokens=2)
    stream = await client.completions.create(model="tiny", prompt="x", max_tokens=3, stream=True)
    async for _ in stream:
        pass
    stream = await client.completions.create(
        model="sql-lora", prompt="x", max_tokens=2, stream=True
    )
    async for _ in stream:
        pass
    async with aiohttp.ClientSession() as session:
        async with session.get(gw.url + "/healthz") as resp:
            assert resp.status == 200
        async with session.get(gw.url + "/readyz") as resp:
            assert resp.status == 200
        async with session.get(gw.url + "/metrics") as resp:
            text = await resp.text()
    assert (
        'inference_requests_total{adapter="",endpoint="completions",model="tiny",status="2xx"} 2.0'
        in text
    )
    assert 'inference_output_tokens_total{adapter="",model="tiny"} 5.0' in text
    assert 'inference_output_tokens_total{adapter="sql-lora",model="tiny"} 2.0' in text
    assert 'inference_time_to_first_token_seconds_count{adapter="",model="tiny"} 1.0' in text
    assert (
        'inference_time_to_first_token_seconds_count{adapter="sql-lora",model="tiny"} 1.0' in text
    )
    assert 'inference_time_per_output_token_seconds_count{adapter="",model="tiny"} 1.0' in text
    assert 'gateway_routing_decisions_total{model="tiny",policy="default"' in text
    assert "inference_latency_seconds_bucket" in text
