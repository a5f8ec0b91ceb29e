"""Conformance, continued: the parameters and endpoints added for the OpenAI surface
(`logprobs`, `top_logprobs`, `seed`, `/v1/responses`), against the simulator and real vLLM.

As in test_conformance.py, the simulator is wrong wherever the two differ; values the
engines cannot share are compared by shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.conformance import MAX_MODEL_LEN, Engine
from tests.support.tiny_model import TinyModel

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def http(engine: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def sdk(engine: Engine) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{engine.base_url}/v1", api_key="x", max_retries=0) as client:
        yield client


def _shape(value: Any) -> Any:
    """The keys and JSON types of a value, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def _sse(text: str) -> list[tuple[str | None, Any]]:
    """(event name, JSON data) of each SSE block, `[DONE]` left out."""
    out: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        if data is not None and data != "[DONE]":
            out.append((name, json.loads(data)))
    return out


def _without_token_keys(body: Any) -> Any:
    """A completion's `top_logprobs` maps token texts to numbers: one key for the shape."""
    for choice in body.get("choices", []) if isinstance(body, dict) else []:
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("top_logprobs"), list):
            logprobs["top_logprobs"] = [
                {"<token>": next(iter(top.values()))} if top else top
                for top in logprobs["top_logprobs"]
            ]
    return body


def _both(simulator_engine: Engine, vllm_engine: Engine) -> list[httpx.Client]:
    return [
        httpx.Client(base_url=simulator_engine.base_url, timeout=60),
        httpx.Client(base_url=vllm_engine.base_url, timeout=60),
    ]


# -- logprobs --------------------------------------------------------------------------


def test_chat_logprobs_and_top_logprobs(sdk: openai.OpenAI, engine: Engine) -> None:
    answer = sdk.chat.completions.create(
        model=engine.model, messages=MESSAGES, max_tokens=3, temperature=0, logprobs=True,
        top_logprobs=2, extra_body={"ignore_eos": True},
    )  # fmt: skip
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert len(logprobs.content) == 3
    for token in logprobs.content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 2
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob
        assert token.bytes is not None


def test_chat_logprobs_without_top_logprobs(sdk: openai.OpenAI, engine: Engine) -> None:
    answer = sdk.chat.completions.create(
        model=engine.model, messages=MESSAGES, max_tokens=2, logprobs=True,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [t.top_logprobs for t in logprobs.content] == [[], []]
    plain = sdk.chat.completions.create(model=engine.model, messages=MESSAGES, max_tokens=2)
    assert plain.choices[0].logprobs is None


def test_completion_logprobs(sdk: openai.OpenAI, engine: Engine) -> None:
    answer = sdk.completions.create(
        model=engine.model, prompt="Hello", max_tokens=3, temperature=0, logprobs=2,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens is not None
    assert logprobs.top_logprobs is not None
    assert logprobs.text_offset is not None
    assert len(logprobs.tokens) == 3
    # Up to the top 2 plus the sampled token; fewer when two ids decode to the same text.
    assert all(1 <= len(top) <= 3 for top in logprobs.top_logprobs if top is not None)
    assert logprobs.text_offset == sorted(logprobs.text_offset)


def test_streamed_chat_logprobs(engine: Engine, http: httpx.Client) -> None:
    body = {
        "model": engine.model, "messages": MESSAGES, "max_tokens": 4, "stream": True,
        "logprobs": True, "top_logprobs": 1, "ignore_eos": True,
    }  # fmt: skip
    events = [data for _, data in _sse(http.post("/v1/chat/completions", json=body).text)]
    tokens = [
        entry
        for event in events
        for choice in event["choices"]
        if choice.get("logprobs")
        for entry in choice["logprobs"]["content"]
    ]
    assert len(tokens) == 4
    assert {len(t["top_logprobs"]) for t in tokens} == {1}


def test_same_seed_same_text(sdk: openai.OpenAI, engine: Engine) -> None:
    args: dict[str, Any] = {
        "model": engine.model, "prompt": "Once", "max_tokens": 8, "temperature": 1.0,
        "seed": 11, "extra_body": {"ignore_eos": True},
    }  # fmt: skip
    first = sdk.completions.create(**args).choices[0].text
    assert sdk.completions.create(**args).choices[0].text == first


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/v1/chat/completions",
            {"model": "tiny", "messages": MESSAGES, "max_tokens": 2, "logprobs": True,
             "top_logprobs": 2, "temperature": 0, "ignore_eos": True},
            id="chat-logprobs",
        ),
        pytest.param(
            "/v1/completions",
            {"model": "tiny", "prompt": "Hi", "max_tokens": 2, "logprobs": 2, "temperature": 0,
             "ignore_eos": True},
            id="completion-logprobs",
        ),
        pytest.param(
            "/v1/responses",
            {"model": "tiny", "input": "Hi", "max_output_tokens": 3, "ignore_eos": True,
             "temperature": 0},
            id="response",
        ),
        pytest.param(
            "/v1/responses",
            {"model": "tiny", "input": [{"role": "user", "content": "Hi"}],
             "instructions": "Be brief.", "max_output_tokens": 2, "ignore_eos": True,
             "temperature": 0},
            id="response-items",
        ),
    ],
)  # fmt: skip
def test_same_answer_shape(
    simulator_engine: Engine, vllm_engine: Engine, path: str, body: dict[str, Any]
) -> None:
    shapes = []
    for client in _both(simulator_engine, vllm_engine):
        with client:
            response = client.post(path, json=body)
            shapes.append((response.status_code, _shape(_without_token_keys(response.json()))))
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/v1/chat/completions",
            {"model": "tiny", "messages": MESSAGES, "top_logprobs": 2},
            id="top-logprobs-without-logprobs",
        ),
        pytest.param(
            "/v1/chat/completions",
            {"model": "tiny", "messages": MESSAGES, "logprobs": True, "top_logprobs": 21},
            id="top-logprobs-above-max",
        ),
        pytest.param(
            "/v1/completions", {"model": "tiny", "prompt": "x", "logprobs": 21},
            id="completion-logprobs-above-max",
        ),
        pytest.param(
            "/v1/responses",
            {"model": "tiny", "input": "x", "max_output_tokens": MAX_MODEL_LEN * 4},
            id="max-output-tokens-above-context",
        ),
    ],
)  # fmt: skip
def test_same_error(
    simulator_engine: Engine, vllm_engine: Engine, path: str, body: dict[str, Any]
) -> None:
    errors = []
    for client in _both(simulator_engine, vllm_engine):
        with client:
            response = client.post(path, json=body)
            error = response.json()["error"]
            errors.append((response.status_code, error["type"], error["param"], error["code"]))
    assert errors[0] == errors[1]
    assert errors[0][0] == 400


# -- responses -------------------------------------------------------------------------


def test_response_stream_events(simulator_engine: Engine, vllm_engine: Engine) -> None:
    body = {
        "model": "tiny", "input": "Hi", "max_output_tokens": 3, "stream": True, "ignore_eos": True,
        "temperature": 0,  # greedy: the random tiny model's few tokens are the same each run
    }  # fmt: skip
    runs = []
    for client in _both(simulator_engine, vllm_engine):
        with client:
            events = _sse(client.post("/v1/responses", json=body).text)
        assert all(name == data["type"] for name, data in events)
        assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
        kinds: list[str] = []
        for _, data in events:  # runs of deltas collapsed: token counts differ
            if not kinds or kinds[-1] != data["type"]:
                kinds.append(data["type"])
        shapes = {data["type"]: json.dumps(_shape(data), sort_keys=True) for _, data in events}
        runs.append((kinds, shapes))
    assert runs[0] == runs[1]


def test_response_usage_counts_the_output(sdk: openai.OpenAI, engine: Engine) -> None:
    answer = sdk.responses.create(
        model=engine.model, input="Hi", max_output_tokens=4, extra_body={"ignore_eos": True}
    )
    assert answer.status == "incomplete"
    assert answer.usage is not None
    assert answer.usage.output_tokens == 4
    assert answer.usage.total_tokens == answer.usage.input_tokens + 4


# -- tool calls ------------------------------------------------------------------------

TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": TOOL_PARAMETERS, "strict": True}}
    for name in ("check", "other")
]
NAMES = {"check", "other"}
FORCED = [
    pytest.param("required", (NAMES, "tool_calls"), id="required"),
    pytest.param({"type": "function", "function": {"name": "other"}}, ({"other"}, "stop"),
                 id="named"),
]  # fmt: skip
"""`tool_choice`, and (the names the call may have, the finish reason)."""
TOOL_MAX_TOKENS = 200


@pytest.fixture(scope="module")
def no_whitespace(tiny_model: TinyModel) -> dict[str, float]:
    """`logit_bias` against every whitespace-only token of the tiny model: constrained to
    the tool-call format, the random weights would otherwise emit blanks (which the JSON
    grammar allows) until `max_tokens`. Tokens the grammar forces still come out."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_model.path / "tokenizer.json"))
    return {
        str(i): -100.0
        for i in tokenizer.get_vocab().values()
        if tokenizer.decode([i]) and not tokenizer.decode([i]).strip()
    }


def _tool_body(tool_choice: Any, bias: dict[str, float], *, stream: bool = False) -> Any:
    # The stop string ends the answer where the random model would ramble on after the
    # call (vLLM answers its `stop_reason`, which the shape comparison leaves out).
    return {
        "model": "tiny", "messages": MESSAGES, "tools": TOOLS, "tool_choice": tool_choice,
        "max_tokens": TOOL_MAX_TOKENS, "temperature": 0, "seed": 0, "stream": stream,
        "logit_bias": bias, "stop": ["</tool_call>"],
    }  # fmt: skip


@pytest.mark.parametrize(("tool_choice", "expected"), FORCED)
def test_a_forced_tool_call(
    tools_engine: Engine, no_whitespace: dict[str, float], tool_choice: Any,
    expected: tuple[set[str], str],
) -> None:  # fmt: skip
    names, finish = expected
    with httpx.Client(base_url=tools_engine.base_url, timeout=60) as http:
        answer = http.post("/v1/chat/completions", json=_tool_body(tool_choice, no_whitespace))
    body = answer.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == finish
    message = choice["message"]
    assert message["content"] == ""
    [call] = message["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("chatcmpl-tool-")
    assert call["function"]["name"] in names
    assert set(json.loads(call["function"]["arguments"])) == {"ok"}


@pytest.mark.parametrize(("tool_choice", "expected"), FORCED)
def test_a_forced_tool_call_has_the_same_shape(
    simulator_engine: Engine, vllm_tools_engine: Engine, no_whitespace: dict[str, float],
    tool_choice: Any, expected: Any,
) -> None:  # fmt: skip
    shapes = []
    for client in _both(simulator_engine, vllm_tools_engine):
        with client:
            body = _tool_body(tool_choice, no_whitespace)
            answer = client.post("/v1/chat/completions", json=body).json()
            answer["choices"][0].pop("stop_reason")
            shapes.append(_shape(answer))
    assert shapes[0] == shapes[1]


def _tool_stream(
    client: httpx.Client, tool_choice: Any, bias: dict[str, float]
) -> tuple[list[Any], str, list[str]]:
    """(the shape of each delta that carries a tool call, runs of equal shapes collapsed;
    the arguments they add up to; the finish reasons)."""
    body = _tool_body(tool_choice, bias, stream=True)
    events = [data for _, data in _sse(client.post("/v1/chat/completions", json=body).text)]
    shapes: list[Any] = []
    arguments = ""
    finishes = []
    for event in events:
        for choice in event["choices"]:
            for call in choice["delta"].get("tool_calls", []):
                shape = _shape({**choice["delta"], "tool_calls": [call]})
                if not shapes or shapes[-1] != shape:
                    shapes.append(shape)
                arguments += call["function"].get("arguments") or ""
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
    return shapes, arguments, finishes


@pytest.mark.parametrize(("tool_choice", "expected"), FORCED)
def test_a_streamed_forced_tool_call(
    simulator_engine: Engine, vllm_tools_engine: Engine, no_whitespace: dict[str, float],
    tool_choice: Any, expected: tuple[set[str], str],
) -> None:  # fmt: skip
    finish = expected[1]
    runs = []
    for client in _both(simulator_engine, vllm_tools_engine):
        with client:
            shapes, arguments, finishes = _tool_stream(client, tool_choice, no_whitespace)
        assert set(json.loads(arguments)) == {"ok"}
        assert finishes == [finish]
        runs.append(shapes)
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"tools": []}, id="empty-tools"),
        pytest.param({"tool_choice": "required"}, id="tool-choice-without-tools"),
        pytest.param({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "x"}}},
                     id="named-tool-not-in-tools"),
    ],
)  # fmt: skip
def test_same_tool_refusal(
    simulator_engine: Engine, vllm_tools_engine: Engine, extra: dict[str, Any]
) -> None:
    body = {"model": "tiny", "messages": MESSAGES, "max_tokens": 2, **extra}
    errors = []
    for client in _both(simulator_engine, vllm_tools_engine):
        with client:
            response = client.post("/v1/chat/completions", json=body)
            error = response.json()["error"]
            errors.append((response.status_code, error["type"], error["param"], error["code"]))
    assert errors[0] == errors[1]
    assert errors[0][0] == 400
