"""The simulator answers `logprobs` / `top_logprobs` as vLLM does (shape, counts, checks)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.support.simulator import sim_fleet

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    async with (
        sim_fleet(profile="tiny", seed=5) as fleet,
        openai.AsyncOpenAI(base_url=f"{fleet.urls[0]}/v1", api_key="-", max_retries=0) as client,
    ):
        yield client


async def test_chat_logprobs_with_top_logprobs(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim", messages=MESSAGES, max_tokens=4, logprobs=True, top_logprobs=2
    )
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert len(logprobs.content) == 4
    assert "".join(t.token for t in logprobs.content) == reply.choices[0].message.content
    for token in logprobs.content:
        assert token.logprob < 0
        assert token.bytes == list(token.token.encode())
        assert len(token.top_logprobs) == 2
        assert token.top_logprobs[0].token == token.token
        assert token.top_logprobs[1].logprob < token.top_logprobs[0].logprob


async def test_chat_logprobs_off_unless_asked(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="sim", messages=MESSAGES, max_tokens=2)
    assert reply.choices[0].logprobs is None
    plain = await client.chat.completions.create(
        model="sim", messages=MESSAGES, max_tokens=2, logprobs=True
    )
    assert plain.choices[0].logprobs is not None
    assert plain.choices[0].logprobs.content is not None
    assert [t.top_logprobs for t in plain.choices[0].logprobs.content] == [[], []]


async def test_streamed_chat_logprobs_come_with_their_tokens(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim", messages=MESSAGES, max_tokens=5, logprobs=True, top_logprobs=1, stream=True
    )
    tokens: list[str] = []
    text = ""
    async for chunk in stream:
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        if choice.logprobs is not None and choice.logprobs.content:
            tokens.extend(t.token for t in choice.logprobs.content)
    assert len(tokens) == 5
    assert "".join(tokens) == text


async def test_completion_logprobs(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(model="sim", prompt="Once", max_tokens=3, logprobs=2)
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens is not None
    assert logprobs.token_logprobs is not None
    assert logprobs.top_logprobs is not None
    assert logprobs.text_offset is not None
    assert len(logprobs.tokens) == 3
    assert "".join(logprobs.tokens) == reply.choices[0].text
    assert [len(top) for top in logprobs.top_logprobs] == [2, 2, 2]
    assert logprobs.text_offset == [0, len(logprobs.tokens[0]), len("".join(logprobs.tokens[:2]))]


async def test_logprobs_are_deterministic(client: openai.AsyncOpenAI) -> None:
    asked = {"model": "sim", "prompt": "Same", "max_tokens": 3, "logprobs": 1}
    first = await client.completions.create(**asked)
    second = await client.completions.create(**asked)
    assert first.choices[0].logprobs == second.choices[0].logprobs


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param({"top_logprobs": 2}, "top_logprobs", id="top-without-logprobs"),
        pytest.param({"logprobs": True, "top_logprobs": -2}, "top_logprobs", id="negative"),
        pytest.param({"logprobs": True, "top_logprobs": 21}, "logprobs", id="above-max"),
    ],
)
async def test_logprobs_refusals(
    client: openai.AsyncOpenAI, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="sim", messages=MESSAGES, max_tokens=1, extra_body=extra
        )
    assert caught.value.param == param
