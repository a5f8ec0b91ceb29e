"""Real vLLM (CPU, the tiny random Llama) behind the gateway: its errors reach the SDK in
OpenAI's shape, and the Responses API and logprobs pass through.

vLLM answers `max_tokens` above the context with `{"type": "BadRequestError", "code": 400}`;
the client must see `invalid_request_error` with a string code (docs/openai-compatibility.md).
One vLLM for the module (start-up is about a minute on 2 cores).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from tests.support.gateway import run_gateway
from tests.support.tiny_model import build_tiny_model
from tests.support.vllm_server import VllmServer, running_vllm

CONTEXT = 256
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp("tiny")
    model = build_tiny_model(root / "model")
    with running_vllm(model.path, log_path=root / "vllm.log", max_model_len=CONTEXT) as server:
        yield server


@pytest.fixture
async def client(vllm: VllmServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={vllm.base_url}"]) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as sdk,
    ):
        yield sdk


async def test_max_tokens_above_the_context_is_invalid_request_error(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=CONTEXT * 4
        )
    error = caught.value
    assert isinstance(error.body, dict)
    assert error.body["type"] == "invalid_request_error"
    assert error.code == "context_length_exceeded"
    assert error.param == "max_tokens"
    assert str(CONTEXT) in error.message


async def test_streamed_max_tokens_above_the_context_too(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:  # the 400 comes before any byte
        await client.completions.create(
            model="tiny", prompt="hello", max_tokens=CONTEXT * 4, stream=True
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "invalid_request_error"
    assert caught.value.code == "context_length_exceeded"


async def test_unknown_top_logprobs_range_is_invalid_request_error(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=2, logprobs=True, top_logprobs=21
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "invalid_request_error"
    assert isinstance(caught.value.code, str)


async def test_logprobs_and_responses_pass_through(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=3, logprobs=True, top_logprobs=2,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert {len(t.top_logprobs) for t in logprobs.content} == {2}
    answer = await client.responses.create(model="tiny", input="hello", max_output_tokens=3)
    assert answer.usage is not None
    assert answer.usage.output_tokens <= 3
    kinds: list[str] = []
    async with client.responses.stream(model="tiny", input="hello", max_output_tokens=3) as s:
        kinds = [event.type async for event in s]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
