"""The simulator's `/v1/responses` and `/v1/embeddings` over loopback, with the openai SDK."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator

import openai
import pytest

from tests.support.simulator import sim_fleet

EMBEDDING_DIM = 48


@pytest.fixture
async def generator() -> AsyncIterator[openai.AsyncOpenAI]:
    async with (
        sim_fleet(profile="tiny", seed=3, max_model_len=512) as fleet,
        openai.AsyncOpenAI(base_url=f"{fleet.urls[0]}/v1", api_key="-", max_retries=0) as client,
    ):
        yield client


@pytest.fixture
async def embedder() -> AsyncIterator[openai.AsyncOpenAI]:
    async with (
        sim_fleet(profile="tiny", runner="pooling", embedding_dim=EMBEDDING_DIM) as fleet,
        openai.AsyncOpenAI(base_url=f"{fleet.urls[0]}/v1", api_key="-", max_retries=0) as client,
    ):
        yield client


async def test_response_plain(generator: openai.AsyncOpenAI) -> None:
    answer = await generator.responses.create(
        model="sim", input="Say hello", instructions="Be brief.", max_output_tokens=6
    )
    assert answer.object == "response"
    assert answer.status == "incomplete"
    assert answer.incomplete_details is not None
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.output_text
    assert answer.usage is not None
    assert answer.usage.output_tokens == 6
    assert answer.usage.input_tokens > 0
    assert answer.usage.total_tokens == answer.usage.input_tokens + 6
    assert answer.instructions == "Be brief."


async def test_response_stream_events(generator: openai.AsyncOpenAI) -> None:
    kinds: list[str] = []
    deltas: list[str] = []
    async with generator.responses.stream(
        model="sim", input=[{"role": "user", "content": "Hi"}], max_output_tokens=5
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len(deltas) == 5
    assert final.output_text == "".join(deltas)
    assert final.usage is not None
    assert final.usage.output_tokens == 5


async def test_response_raw_stream_names_each_event(generator: openai.AsyncOpenAI) -> None:
    response = await generator.responses.with_raw_response.create(
        model="sim", input="x", max_output_tokens=2, stream=True
    )
    text = (await response.http_response.aread()).decode()
    blocks = [b for b in text.split("\n\n") if b]
    assert all(b.startswith("event: response.") and "\ndata: {" in b for b in blocks)
    numbers = [int(b.split('"sequence_number":')[1].split(",")[0]) for b in blocks]
    assert numbers == list(range(len(blocks)))


async def test_response_same_seed_same_text(generator: openai.AsyncOpenAI) -> None:
    first = await generator.responses.create(model="sim", input="Same", max_output_tokens=8)
    second = await generator.responses.create(model="sim", input="Same", max_output_tokens=8)
    assert first.output_text == second.output_text


async def test_response_max_output_tokens_above_context(generator: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await generator.responses.create(model="sim", input="x", max_output_tokens=10_000)
    assert caught.value.param == "max_output_tokens"


async def test_embeddings_two_inputs_two_vectors(embedder: openai.AsyncOpenAI) -> None:
    answer = await embedder.embeddings.create(model="sim", input=["hello world", "other words"])
    assert [d.index for d in answer.data] == [0, 1]
    assert {len(d.embedding) for d in answer.data} == {EMBEDDING_DIM}
    for item in answer.data:
        assert math.isclose(sum(x * x for x in item.embedding), 1.0, rel_tol=1e-6)
    assert answer.data[0].embedding != answer.data[1].embedding
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens


async def test_embeddings_deterministic_and_base64(embedder: openai.AsyncOpenAI) -> None:
    floats = await embedder.embeddings.create(
        model="sim", input="hello world", encoding_format="float"
    )
    raw = await embedder.embeddings.with_raw_response.create(
        model="sim", input="hello world", encoding_format="base64"
    )
    default = await embedder.embeddings.create(model="sim", input="hello world")
    body = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(body, str)
    decoded = struct.unpack(f"<{EMBEDDING_DIM}f", base64.b64decode(body))
    assert all(
        math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
        for a, b in zip(decoded, floats.data[0].embedding, strict=True)
    )
    # Without a format the SDK asks for base64 and decodes it itself.
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-5)


async def test_embeddings_token_ids_and_dimensions(embedder: openai.AsyncOpenAI) -> None:
    answer = await embedder.embeddings.create(model="sim", input=[[1, 2, 3], [4, 5]], dimensions=8)
    assert [len(d.embedding) for d in answer.data] == [8, 8]
    assert answer.usage.prompt_tokens == 5


async def test_embeddings_refusals(embedder: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await embedder.embeddings.create(model="sim", input=[])
    with pytest.raises(openai.NotFoundError):
        await embedder.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": "x"}]
        )


async def test_generator_serves_no_embeddings(generator: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await generator.embeddings.create(model="sim", input="x")
