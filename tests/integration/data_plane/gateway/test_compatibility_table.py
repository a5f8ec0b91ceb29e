"""docs/openai-compatibility.md is held to what the gateway does: every row of its table is
parsed, and its example is sent through the gateway to simulated engines (see the page)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import orjson
import pytest

from data_plane.gateway.openapi.document import proxy_paths
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.simulator import sim_fleet

PAGE = Path(__file__).parents[4] / "docs" / "openai-compatibility.md"
CONTEXT = 1024
_REFUSED = re.compile(r"^refused (\d{3})(?: `(\w+)`)?$")


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    parameter: str
    support: str
    example: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.parameter}"


def _rows() -> list[Row]:
    text = PAGE.read_text()
    table = text.split("## Endpoints and parameters", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("endpoint", "---"):
            continue
        method, path = cells[0].split(" ", 1)
        example = orjson.loads(cells[3].strip("`")) if cells[3] else {}
        rows.append(Row(method, path, cells[1], cells[2], example))
    return rows


ROWS = _rows()

_BASE: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "base", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8,
    },
    "/v1/completions": {"model": "base", "prompt": "Once upon", "max_tokens": 8},
    "/v1/responses": {"model": "base", "input": "Hello", "max_output_tokens": 8},
    "/v1/embeddings": {"model": "embedder", "input": "hello world"},
}  # fmt: skip


@dataclass
class Answer:
    status: int
    body: bytes
    row: Row

    def json(self) -> Any:
        return orjson.loads(self.body)

    def events(self) -> list[Any]:
        """The JSON of each SSE `data:` line (`[DONE]` left out)."""
        lines = [line[6:] for line in self.body.decode().splitlines() if line.startswith("data: ")]
        return [orjson.loads(line) for line in lines if line != "[DONE]"]


Check = Callable[[Answer], None]


def _choices(n: int) -> Check:
    def check(a: Answer) -> None:
        assert len(a.json()["choices"]) == n

    return check


def _completion_tokens(n: int) -> Check:
    def check(a: Answer) -> None:
        assert a.json()["usage"]["completion_tokens"] == n

    return check


def _stopped(a: Answer) -> None:
    stops = a.row.example["stop"]
    choice = a.json()["choices"][0]
    text = choice["text"] if "text" in choice else choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] in stops
    assert not any(stop in text for stop in stops)


def _stream_done(a: Answer) -> None:
    assert a.body.rstrip().endswith(b"data: [DONE]")
    assert len(a.events()) > 1


def _usage_last(a: Answer) -> None:
    last = a.events()[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == 8


def _chat_logprobs(top: int) -> Check:
    def check(a: Answer) -> None:
        content = a.json()["choices"][0]["logprobs"]["content"]
        assert len(content) == 8
        assert {len(t["top_logprobs"]) for t in content} == {top}

    return check


def _completion_logprobs(a: Answer) -> None:
    logprobs = a.json()["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) == 8
    assert {len(t) for t in logprobs["top_logprobs"]} == {2}


def _has_text(a: Answer) -> None:
    body = a.json()
    if "output" in body:
        assert body["output"][0]["content"][0]["text"]
    elif "message" in body["choices"][0]:
        assert body["choices"][0]["message"]["content"]
    else:
        assert all(c["text"] for c in body["choices"])


def _response_tokens(n: int) -> Check:
    def check(a: Answer) -> None:
        assert a.json()["usage"]["output_tokens"] == n
        assert a.json()["status"] == "incomplete"

    return check


def _instructions(a: Answer) -> None:
    assert a.json()["instructions"] == "Be brief."
    with_system = a.json()["usage"]["input_tokens"]
    assert with_system > 1  # the system message counts as input


def _response_events(a: Answer) -> None:
    kinds = [event["type"] for event in a.events()]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert b"event: response.completed\n" in a.body


def _vectors(n: int, size: int = 32) -> Check:
    def check(a: Answer) -> None:
        data = a.json()["data"]
        assert [len(d["embedding"]) for d in data] == [size] * n

    return check


def _base64_vector(a: Answer) -> None:
    encoded = a.json()["data"][0]["embedding"]
    assert len(base64.b64decode(encoded)) == 32 * 4  # float32 each


def _tool_schema(a: Answer, name: str) -> dict[str, Any]:
    for tool in a.row.example["tools"]:
        if tool["function"]["name"] == name:
            schema: dict[str, Any] = tool["function"]["parameters"]
            return schema
    raise AssertionError(f"{name} is not one of the row's tools")


def _called(name: str, finish: str) -> Check:
    """The answer is a call of `name` (vLLM's shape: `content` "", one parsed call)."""

    def check(a: Answer) -> None:
        choice = a.json()["choices"][0]
        assert choice["finish_reason"] == finish
        assert choice["message"]["content"] == ""
        [call] = choice["message"]["tool_calls"]
        assert call["type"] == "function"
        assert call["id"].startswith("chatcmpl-tool-")
        assert call["function"]["name"] == name
        jsonschema.validate(orjson.loads(call["function"]["arguments"]), _tool_schema(a, name))

    return check


def _streamed_call(a: Answer) -> None:
    deltas = [
        call for event in a.events() for choice in event["choices"]
        for call in choice["delta"].get("tool_calls", [])
    ]  # fmt: skip
    assert [d["function"]["name"] for d in deltas if d["function"].get("name")] == ["f"]
    arguments = "".join(d["function"].get("arguments", "") for d in deltas)
    jsonschema.validate(orjson.loads(arguments), _tool_schema(a, "f"))
    finishes = [c["finish_reason"] for e in a.events() for c in e["choices"] if c["finish_reason"]]
    assert finishes == ["tool_calls"]


def _text_not_a_call(a: Answer) -> None:
    message = a.json()["choices"][0]["message"]
    assert message["content"]
    assert "tool_calls" not in message


def _models(a: Answer) -> None:
    assert {m["id"] for m in a.json()["data"]} == {"base", "embedder"}


def _model(a: Answer) -> None:
    assert a.json()["id"] == "base"


async def _seeded(send: Callable[[Row], Any], row: Row, first: Answer) -> None:
    again = await send(row)
    other = await send(Row(row.method, row.path, row.parameter, row.support, {"seed": 8}))
    assert first.json()["choices"] == again.json()["choices"]
    assert first.json()["choices"] != other.json()["choices"]


CHECKS: dict[tuple[str, str], Check] = {
    ("/v1/chat/completions", "messages"): _has_text,
    ("/v1/chat/completions", "max_tokens"): _completion_tokens(3),
    ("/v1/chat/completions", "max_completion_tokens"): _completion_tokens(2),
    ("/v1/chat/completions", "n"): _choices(3),
    ("/v1/chat/completions", "stop"): _stopped,
    ("/v1/chat/completions", "stream"): _stream_done,
    ("/v1/chat/completions", "stream_options.include_usage"): _usage_last,
    ("/v1/chat/completions", "logprobs"): _chat_logprobs(0),
    ("/v1/chat/completions", "top_logprobs"): _chat_logprobs(2),
    ("/v1/chat/completions", "tools"): _called("f", "tool_calls"),
    ("/v1/chat/completions", "tool_choice (named)"): _called("g", "stop"),
    ("/v1/chat/completions", "tool_choice (streamed)"): _streamed_call,
    ("/v1/chat/completions", "tool_choice (auto)"): _text_not_a_call,
    ("/v1/chat/completions", "tool_choice (none)"): _text_not_a_call,
    ("/v1/completions", "prompt"): _has_text,
    ("/v1/completions", "prompt (a batch)"): _choices(2),
    ("/v1/completions", "prompt (token ids)"): _has_text,
    ("/v1/completions", "max_tokens"): _completion_tokens(3),
    ("/v1/completions", "n"): _choices(2),
    ("/v1/completions", "stop"): _stopped,
    ("/v1/completions", "stream"): _stream_done,
    ("/v1/completions", "logprobs"): _completion_logprobs,
    ("/v1/responses", "input"): _has_text,
    ("/v1/responses", "input (message items)"): _has_text,
    ("/v1/responses", "instructions"): _instructions,
    ("/v1/responses", "max_output_tokens"): _response_tokens(3),
    ("/v1/responses", "stream"): _response_events,
    ("/v1/embeddings", "input"): _vectors(1),
    ("/v1/embeddings", "input (several)"): _vectors(2),
    ("/v1/embeddings", "input (token ids)"): _vectors(2),
    ("/v1/embeddings", "encoding_format"): _base64_vector,
    ("/v1/embeddings", "dimensions"): _vectors(1, 8),
    ("/v1/models", "—"): _models,
    ("/v1/models/{model}", "—"): _model,
}
"""What "supported" means for each row: a check that the parameter took effect."""
SEEDED = {("/v1/chat/completions", "seed"), ("/v1/completions", "seed")}
"""Rows checked by sending twice (same seed, same answer; another seed, another)."""


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with (
        sim_fleet(
            replicas=2, profile="tiny", served_model_name="base", max_model_len=CONTEXT,
            time_scale=10.0,
        ) as gen,
        sim_fleet(
            profile="tiny", served_model_name="embedder", runner="pooling", embedding_dim=32
        ) as pool,
        run_gateway(
            discovery="static",
            upstreams=[f"base={gen.urls[0]},{gen.urls[1]}", f"embedder={pool.urls[0]}"],
        ) as running,
    ):  # fmt: skip
        yield running


async def _send(http: aiohttp.ClientSession, url: str, row: Row) -> Answer:
    path = row.path.replace("{response_id}", "resp_1").replace("{model}", "base")
    body = None
    if row.method == "POST" and row.path in _BASE:
        body = orjson.dumps({**_BASE[row.path], **row.example})
    elif row.method == "POST":
        body = b"{}"
    headers = {"content-type": "application/json"} if body is not None else {}
    async with http.request(row.method, url + path, data=body, headers=headers) as response:
        return Answer(response.status, await response.read(), row)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_row(gw: RunningGateway, row: Row) -> None:
    async with aiohttp.ClientSession() as http:
        answer = await _send(http, gw.url, row)
        refused = _REFUSED.match(row.support)
        if refused is not None:
            assert answer.status == int(refused.group(1)), answer.body
            error = orjson.loads(answer.body)["error"]
            assert error["code"] == refused.group(2)
            assert error["message"]
            return
        assert answer.status == 200, answer.body
        if row.support == "passed through":
            return
        assert row.support == "supported", f"unknown support claim {row.support!r}"
        key = (row.path, row.parameter)
        if key in SEEDED:
            await _seeded(lambda r: _send(http, gw.url, r), row, answer)
            return
        assert key in CHECKS, f"no check that {row.id} is supported: add one to CHECKS"
        CHECKS[key](answer)


def test_every_proxied_endpoint_has_rows() -> None:
    paths, _ = proxy_paths()
    listed = {(row.method, row.path) for row in ROWS}
    for path, item in paths.items():
        for method in item:
            assert (method.upper(), path) in listed, f"{method.upper()} {path} not in {PAGE.name}"


def test_every_check_has_its_row() -> None:
    keys = {(row.path, row.parameter) for row in ROWS if row.support == "supported"}
    assert set(CHECKS) | SEEDED == keys
