"""An engine's errors reach the client in OpenAI's shape: OpenAI's `type`, a string `code`
(or null), `param` without pydantic's `body.`, and the SDK's matching exception class.
The engines are simulators answering vLLM's own error bodies (`type: BadRequestError`,
`code: 400`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest

from data_plane.gateway.engine_errors import OPENAI_TYPES
from data_plane.inference.simulator.runner import Fleet
from tests.support.gateway import run_gateway
from tests.support.simulator import sim_fleet

CONTEXT = 256
MESSAGES = [{"role": "user", "content": "Hello"}]

Call = Callable[[openai.AsyncOpenAI], Awaitable[Any]]


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with sim_fleet(profile="tiny", served_model_name="base", max_model_len=CONTEXT) as f:
        yield f


@pytest.fixture
async def client(fleet: Fleet) -> AsyncIterator[openai.AsyncOpenAI]:
    # `ghost` is routed to the replica, which never loaded it (the engine answers 404).
    upstreams = [f"base={fleet.urls[0]}#ghost"]
    async with (
        run_gateway(discovery="static", upstreams=upstreams, max_retries=0) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        yield client


def _chat(**extra: Any) -> Call:
    body: dict[str, Any] = {"model": "base", "messages": MESSAGES, "max_tokens": 2, **extra}
    model = body.pop("model")
    return lambda c: c.chat.completions.create(model=model, **body)


async def _streamed(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="base", messages=MESSAGES, max_tokens=CONTEXT + 1, stream=True
    )
    async for _ in stream:
        pass


CASES = [
    pytest.param(
        _chat(max_tokens=CONTEXT + 1), openai.BadRequestError, "max_tokens",
        "context_length_exceeded", id="max-tokens-above-context",
    ),
    pytest.param(
        _streamed, openai.BadRequestError, "max_tokens", "context_length_exceeded",
        id="streamed-max-tokens-above-context",
    ),
    pytest.param(
        lambda c: c.responses.create(model="base", input="x", max_output_tokens=CONTEXT + 1),
        openai.BadRequestError, "max_output_tokens", "context_length_exceeded",
        id="responses-max-output-tokens",
    ),
    pytest.param(
        lambda c: c.completions.create(model="base", prompt="word " * CONTEXT, max_tokens=1),
        openai.BadRequestError, "input_tokens", "context_length_exceeded", id="prompt-too-long",
    ),
    pytest.param(
        _chat(temperature=3.0), openai.BadRequestError, "temperature", "invalid_value",
        id="temperature-out-of-range",
    ),
    pytest.param(
        _chat(extra_body={"top_p": "wide"}), openai.BadRequestError, "top_p", "invalid_type",
        id="schema-error",
    ),
    pytest.param(
        _chat(logprobs=True, top_logprobs=21), openai.BadRequestError, "logprobs",
        "invalid_value", id="too-many-logprobs",
    ),
    pytest.param(
        _chat(model="ghost"), openai.NotFoundError, "model", "model_not_found",
        id="adapter-not-on-the-engine",
    ),
    pytest.param(
        lambda c: c.embeddings.create(model="base", input="x"), openai.NotFoundError, None,
        "unsupported_endpoint", id="route-the-engine-lacks",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exception", "param", "code"), CASES)
async def test_engine_errors_in_openai_shape(
    client: openai.AsyncOpenAI,
    call: Call,
    exception: type[openai.APIStatusError],
    param: str | None,
    code: str,
) -> None:
    with pytest.raises(exception) as caught:
        await call(client)
    error = caught.value
    assert isinstance(error.body, dict)
    assert error.body["type"] in OPENAI_TYPES
    assert error.code == code
    assert error.param == param
    assert error.message
