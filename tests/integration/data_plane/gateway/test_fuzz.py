"""Property-based fuzzing of the gateway's HTTP API (hypothesis): whatever a client sends,
the answer comes quickly, is never a 5xx, and every error has OpenAI's shape.

The gateway and a vLLM-shaped engine run in a background thread's event loop; hypothesis
drives a plain blocking HTTP client against them.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway


class Background:
    """An event loop in a thread running an engine and a gateway until `stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.statuses: Counter[int] = Counter()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        engine = FakeVllm("tiny", adapters=("sql-lora",))
        await engine.start()
        try:
            async with run_gateway(
                discovery="static",
                upstreams=[f"tiny={engine.url}#sql-lora"],
                max_body_bytes=64 * 1024,
            ) as gw:
                self.port = int(gw.url.rsplit(":", 1)[1])
                self.ready.set()
                await self._stop.wait()
        finally:
            await engine.stop()

    def __enter__(self) -> Background:
        self.thread.start()
        if not self.ready.wait(20):
            raise RuntimeError("the gateway did not start")
        return self

    def __exit__(self, *_: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(20)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Background]:
    with Background() as background:
        yield background


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
models = st.sampled_from(["tiny", "sql-lora", "nope", ""]) | st.text(max_size=12) | json_values
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system"]), "content": st.text(max_size=30)}
    )
    | json_values,
    max_size=3,
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "model": models,
        "messages": messages | json_values,
        "prompt": st.text(max_size=30) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}) | json_values,
        "max_tokens": st.integers(-2, 8) | json_values,
        "extra_field": json_values,
    },
)
bodies = requests.map(orjson.dumps) | st.binary(max_size=200) | json_values.map(orjson.dumps)
paths = st.sampled_from(
    ["/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/models/tiny", "/v1/adapters",
     "/v1/adapters/x", "/healthz", "/readyz", "/metrics", "/", "/v1/models/sql-lora"]
) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%0123456789", max_size=20).map(lambda p: "/" + p)  # fmt: skip
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def check(status: int, headers: dict[str, str], payload: bytes) -> None:
    assert status < 500, (status, payload[:300])
    if status >= 400:
        error: Any = json.loads(payload)["error"]
        assert isinstance(error["message"], str)
        assert isinstance(error["type"], str)
        assert "param" in error
        assert "code" in error
    if status == 429:
        assert "retry-after" in headers


def send(server: Background, method: str, path: str, body: bytes, extra: dict[str, str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/json", **extra})
        resp = conn.getresponse()
        payload = resp.read()
        server.statuses[resp.status] += 1
        check(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
        if resp.status == 200 and resp.getheader("content-type", "").startswith(
            "text/event-stream"
        ):
            assert payload.endswith(b"data: [DONE]\n\n")
    finally:
        conn.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]),
    body=bodies,
    request_id=st.none() | header_values,
)
def test_inference_routes_never_fail_the_server(
    server: Background, path: str, body: bytes, request_id: str | None
) -> None:
    extra = {"x-request-id": request_id} if request_id else {}
    send(server, "POST", path, body, extra)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=methods, path=paths, body=bodies)
def test_any_route_and_method(server: Background, method: str, path: str, body: bytes) -> None:
    send(server, method, path, body, {})


def test_fuzzing_reached_both_answers_and_refusals(server: Background) -> None:
    """Guard against a fuzzer that only ever produced one kind of request (runs after it)."""
    assert server.statuses[200] > 0
    assert server.statuses[400] > 0
    assert server.statuses[404] > 0


def test_other_requests_are_unaffected_after_fuzzing(server: Background) -> None:
    body = orjson.dumps({"model": "tiny", "prompt": "x", "max_tokens": 1})
    server.statuses.clear()
    send(server, "POST", "/v1/completions", body, {})
    assert server.statuses == {200: 1}
