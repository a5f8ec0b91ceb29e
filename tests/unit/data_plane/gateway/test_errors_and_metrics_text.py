from __future__ import annotations

import orjson
import pytest

from data_plane.gateway.engine_errors import as_openai_error
from data_plane.gateway.engine_metrics import parse_engine_metrics
from data_plane.gateway.errors import OverCapacityError, sse_error_event


def test_error_shape_and_retry_after() -> None:
    exc = OverCapacityError("busy", retry_after_s=1.2)
    assert orjson.loads(exc.body()) == {
        "error": {
            "message": "busy",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert exc.headers() == [(b"retry-after", b"2")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b'{"error": {"message": "m", "type": "t"}}', "m", id="already-openai"),
        pytest.param(
            b'{"object": "error", "message": "old vllm", "type": "BadRequestError"}',
            "old vllm",
            id="old-vllm",
        ),
        pytest.param(b'{"detail": "fastapi"}', "fastapi", id="fastapi-detail"),
        pytest.param(b"<html>bad gateway</html>", "<html>bad gateway</html>", id="html"),
        pytest.param(b"", "upstream answered 502", id="empty"),
    ],
)
def test_upstream_errors_get_openai_shape(body: bytes, message: str) -> None:
    error = orjson.loads(as_openai_error(502, body))["error"]
    assert error["message"] == message
    assert {"message", "type"} <= set(error)


def test_sse_error_event_is_one_event() -> None:
    event = sse_error_event("broke")
    assert event.startswith(b"data: {")
    assert event.endswith(b"\n\n")
    assert orjson.loads(event[6:])["error"]["message"] == "broke"


def test_engine_metrics_are_read() -> None:
    text = """# HELP vllm:num_requests_waiting x
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="1",model_name="m"} 2.0
vllm:num_requests_running{model_name="m"} 4.0
vllm:lora_requests_info{max_lora="2",running_lora_adapters="a,b",waiting_lora_adapters="c"} 1.7e9
vllm:lora_requests_info{max_lora="2",running_lora_adapters="b",waiting_lora_adapters=""} 1.8e9
vllm:other 1
"""
    load = parse_engine_metrics(text)
    assert load.waiting == 5
    assert load.running == 4
    assert load.running_adapters == frozenset({"b"})


def test_engine_metrics_without_lora_info() -> None:
    assert (
        parse_engine_metrics("garbage\nvllm:num_requests_waiting nan-ish\n").running_adapters
        is None
    )
