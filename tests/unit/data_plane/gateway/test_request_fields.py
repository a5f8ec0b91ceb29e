from __future__ import annotations

import orjson
import pytest

from data_plane.gateway.errors import BadRequestError
from data_plane.gateway.request_fields import Endpoint, parse_request


def test_chat_fields_and_prefix_order() -> None:
    body = orjson.dumps(
        {
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            ],
        }
    )
    fields = parse_request(body, Endpoint.CHAT, 1000)
    assert fields.model == "m"
    assert fields.stream
    assert fields.include_usage
    assert fields.prefix == "system:You are terse.\nuser:Hello\n"


def test_prefix_is_cut_at_the_limit() -> None:
    body = orjson.dumps({"model": "m", "prompt": "x" * 1000})
    assert parse_request(body, Endpoint.COMPLETIONS, 10).prefix == "x" * 10


def test_token_prompts_make_a_prefix() -> None:
    body = orjson.dumps({"model": "m", "prompt": [1, 2, 3]})
    assert parse_request(body, Endpoint.COMPLETIONS, 100).prefix == "1,2,3"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(b"", None, id="empty"),
        pytest.param(b"nope", None, id="not-json"),
        pytest.param(b"3", None, id="scalar"),
        pytest.param(b'{"prompt": "x"}', "model", id="no-model"),
        pytest.param(b'{"model": "", "prompt": "x"}', "model", id="empty-model"),
        pytest.param(b'{"model": "m", "prompt": "x", "stream": 1}', "stream", id="stream-int"),
        pytest.param(
            b'{"model": "m", "prompt": "x", "stream_options": 1}', "stream_options", id="options"
        ),
        pytest.param(b'{"model": "m"}', "prompt", id="no-prompt"),
        pytest.param(b'{"model": "m", "prompt": []}', "prompt", id="empty-prompt"),
        pytest.param(b'{"model": "m", "prompt": {}}', "prompt", id="prompt-object"),
    ],
)
def test_bad_completion_bodies(body: bytes, param: str | None) -> None:
    with pytest.raises(BadRequestError) as info:
        parse_request(body, Endpoint.COMPLETIONS, 100)
    assert info.value.param == param


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param(None, id="missing"),
        pytest.param([], id="empty"),
        pytest.param(["x"], id="not-objects"),
    ],
)
def test_bad_messages(messages: object) -> None:
    with pytest.raises(BadRequestError):
        parse_request(orjson.dumps({"model": "m", "messages": messages}), Endpoint.CHAT, 100)
