"""The simulator answers forced tool calls (`tool_choice` "required" or named) as vLLM does,
through the official SDK: a parsed call whose arguments fit the schema, streamed in pieces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionToolChoiceOptionParam

from tests.support.simulator import sim_fleet

MESSAGES: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1, "maximum": 5},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "days", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    cast(ChatCompletionFunctionToolParam, {"type": "function", "function": {
        "name": name, "parameters": PARAMETERS, "strict": True}})
    for name in ("get_weather", "get_time")
]  # fmt: skip
NAMED: ChatCompletionToolChoiceOptionParam = {"type": "function", "function": {"name": "get_time"}}


@pytest.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    async with (
        sim_fleet(profile="tiny", seed=5) as fleet,
        openai.AsyncOpenAI(base_url=f"{fleet.urls[0]}/v1", api_key="-", max_retries=0) as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("choice", "name", "finish"),
    [("required", "get_weather", "tool_calls"), (NAMED, "get_time", "stop")],
    ids=["required", "named"],
)
async def test_a_forced_tool_is_called(
    client: openai.AsyncOpenAI, choice: ChatCompletionToolChoiceOptionParam, name: str,
    finish: str,
) -> None:  # fmt: skip
    reply = await client.chat.completions.create(
        model="sim", messages=MESSAGES, tools=TOOLS, tool_choice=choice, seed=3, max_tokens=16
    )
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == finish
    assert message.content == ""
    calls = message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("chatcmpl-tool-")
    assert call.function.name == name
    jsonschema.validate(json.loads(call.function.arguments), PARAMETERS)


async def test_the_same_seed_gives_the_same_arguments(client: openai.AsyncOpenAI) -> None:
    async def call(seed: int) -> str:
        reply = await client.chat.completions.create(
            model="sim", messages=MESSAGES, tools=TOOLS, tool_choice="required", seed=seed,
            max_tokens=16,
        )  # fmt: skip
        calls = reply.choices[0].message.tool_calls or []
        return calls[0].function.arguments  # type: ignore[union-attr]

    first = await call(11)
    assert await call(11) == first


@pytest.mark.parametrize(
    ("choice", "name", "finish"),
    [("required", "get_weather", "tool_calls"), (NAMED, "get_time", "stop")],
    ids=["required", "named"],
)
async def test_a_streamed_call_arrives_in_pieces(
    client: openai.AsyncOpenAI, choice: ChatCompletionToolChoiceOptionParam, name: str,
    finish: str,
) -> None:  # fmt: skip
    stream = await client.chat.completions.create(
        model="sim", messages=MESSAGES, tools=TOOLS, tool_choice=choice, seed=3, max_tokens=16,
        stream=True, extra_body={"ignore_eos": True},
    )  # fmt: skip
    ids, names, pieces, finishes = [], [], [], []
    async with stream:
        async for chunk in stream:
            for streamed in chunk.choices:
                for delta in streamed.delta.tool_calls or []:
                    assert delta.index == 0
                    ids += [delta.id] if delta.id else []
                    if delta.function and delta.function.name:
                        names.append(delta.function.name)
                    if delta.function and delta.function.arguments:
                        pieces.append(delta.function.arguments)
                if streamed.finish_reason:
                    finishes.append(streamed.finish_reason)
    assert names == [name]
    assert len(ids) == 1
    assert ids[0].startswith("chatcmpl-tool-")
    assert len(pieces) > 1
    jsonschema.validate(json.loads("".join(pieces)), PARAMETERS)
    assert finishes == [finish]


@pytest.mark.parametrize("choice", ["auto", "none"])
async def test_auto_and_none_answer_text(client: openai.AsyncOpenAI, choice: str) -> None:
    reply = await client.chat.completions.create(
        model="sim", messages=MESSAGES, tools=TOOLS, tool_choice=choice,  # type: ignore[arg-type]
        max_tokens=4,
    )  # fmt: skip
    assert reply.choices[0].message.content
    assert not reply.choices[0].message.tool_calls


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": []}, "tools"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "x"}}},
         "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {}}]}, "body.tools.0.function.name"),
    ],
    ids=["empty-tools", "unknown-named-tool", "choice-without-tools", "tool-without-name"],
)  # fmt: skip
async def test_bad_tool_requests_are_refused(
    client: openai.AsyncOpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="sim", messages=MESSAGES, max_tokens=1, extra_body=extra
        )
    assert caught.value.param == param
