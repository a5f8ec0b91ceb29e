"""Tool calling and logprobs on the embedded default (examples/embedded: SmolLM2-135M-Instruct
on the real vLLM engine on CPU), through the gateway, with the official OpenAI SDK.

What the protocol guarantees is asserted, not what a 135M model happens to choose: with
`tool_choice` "required" or a named tool vLLM constrains the output to the tool-call format
(so a parsed call must come back); with "auto" the answer must be a valid message, either a
parsed call or text. Greedy decoding with a seed keeps each answer the same run to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.support.embedded import EmbeddedStack, running_embedded

ROOT = Path(__file__).resolve().parents[3]
MODEL = "smollm2-135m-instruct"
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the weather in Paris?"}
]
MAX_TOKENS = 120


def tool(*, strict: bool = False) -> ChatCompletionFunctionToolParam:
    function = {**WEATHER, **({"strict": True} if strict else {})}
    return cast(ChatCompletionFunctionToolParam, {"type": "function", "function": function})


@pytest.fixture(scope="module")
def inductor_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inductor-cache")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, inductor_cache: Path
) -> Iterator[EmbeddedStack]:
    root = tmp_path_factory.mktemp("tools")
    # Where torch's inductor would write what it compiles: the logprobs test looks there.
    env = {"MODEL_REPOSITORY": str(root / "models"), "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache)}
    prepared = subprocess.run(
        [sys.executable, "-m", "data_plane.inference.engine_api.prepare", MODEL],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
    documents = list(
        yaml.safe_load_all((ROOT / "examples" / "embedded" / "model.yaml").read_text())
    )
    with running_embedded(root, documents, env=env, ready_timeout_s=600) as running:
        yield running


@pytest.fixture
def client(stack: EmbeddedStack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0, timeout=120
    ) as sdk:
        yield sdk


def test_the_first_logprobs_request_compiles_nothing(
    client: openai.OpenAI, inductor_cache: Path
) -> None:
    """The first request with `logprobs` used to wait ~15 s while torch's inductor compiled
    vLLM's sampler helper on the request path; the CPU engine now runs without dynamo."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        logprobs=True,
        top_logprobs=2,
        max_tokens=4,
        temperature=0,
    )
    content = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
    assert content, "logprobs were asked for"
    assert all(len(token.top_logprobs) == 2 for token in content)
    assert all(token.logprob <= 0 for token in content)
    compiled = [p for p in inductor_cache.rglob("*") if p.is_file()]
    assert compiled == [], f"inductor compiled on the request path: {compiled[:5]}"


def test_required_tool_choice_yields_a_parsed_call(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[tool()],
        tool_choice="required",
        temperature=0,
        seed=0,
        max_tokens=MAX_TOKENS,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls if c.type == "function"] == ["get_weather"]
    assert isinstance(json.loads(calls[0].function.arguments), dict)  # type: ignore[union-attr]


def test_a_named_strict_tool_yields_arguments_in_its_schema(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[tool(strict=True)],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        seed=0,
        max_tokens=MAX_TOKENS,
    )
    calls = reply.choices[0].message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"city"}
    assert isinstance(arguments["city"], str)


def test_auto_tool_choice_answers_a_valid_message(client: openai.OpenAI) -> None:
    """Refused with 400 before the Model carried `toolCallParser`."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[tool()],
        tool_choice="auto",
        temperature=0,
        seed=0,
        max_tokens=MAX_TOKENS,
    )
    message = reply.choices[0].message
    assert message.role == "assistant"
    if message.tool_calls:
        assert reply.choices[0].finish_reason == "tool_calls"
        for call in message.tool_calls:
            assert call.type == "function"
            assert call.function.name == "get_weather"
            assert isinstance(json.loads(call.function.arguments), dict)
    else:
        assert message.content


def test_a_streamed_tool_call_arrives_in_pieces_that_add_up(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[tool(strict=True)],
        tool_choice="required",
        stream=True,
        temperature=0,
        seed=0,
        max_tokens=MAX_TOKENS,
    )
    names: list[str] = []
    arguments = ""
    finish: list[str] = []
    with stream:
        for chunk in stream:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or []:
                    assert delta.index == 0
                    if delta.function and delta.function.name:
                        names.append(delta.function.name)
                    if delta.function and delta.function.arguments:
                        arguments += delta.function.arguments
                if choice.finish_reason:
                    finish.append(choice.finish_reason)
    assert names == ["get_weather"]
    assert set(json.loads(arguments)) == {"city"}
    assert finish == ["tool_calls"]


# -- the Responses API on the same real engine, through the gateway ----------------------


def test_a_response(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Say hello.", max_output_tokens=16, temperature=0
    )
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.usage is not None
    assert response.usage.output_tokens > 0


def test_a_streamed_response_completes(client: openai.OpenAI) -> None:
    kinds: list[str] = []
    deltas: list[str] = []
    completed = None
    with client.responses.stream(
        model=MODEL, input="Say hello.", max_output_tokens=16, temperature=0
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.completed":
                completed = event.response
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert completed is not None
    assert completed.output_text
    assert "".join(deltas) == completed.output_text
