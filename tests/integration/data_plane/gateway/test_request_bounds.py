"""What one request may cost: `n`, the tokens it may generate, a head that never ends, and
engine work left behind by a client that went away (docs/security.md, probes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest

from data_plane.inference.simulator.engine import SimEngine
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.simulator import sim_fleet
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
async def gw(engine: FakeVllm) -> AsyncIterator[RunningGateway]:
    async with run_gateway(
        discovery="static", upstreams=[f"tiny={engine.url}"], max_request_tokens=10_000
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        pytest.param({"n": 129}, "n", "integer_above_max_value", id="n-above-128"),
        pytest.param({"n": 100_000}, "n", "integer_above_max_value", id="n-100000"),
        pytest.param({"n": 0}, "n", "integer_below_min_value", id="n-zero"),
        pytest.param({"n": "2"}, "n", "invalid_type", id="n-string"),
        pytest.param({"n": 8, "max_tokens": 2000}, "n", "request_tokens_above_limit", id="n-x-max"),
        pytest.param({"max_tokens": 10_001}, "max_tokens", "request_tokens_above_limit", id="max"),
        pytest.param({"n": 3}, "n", "request_tokens_above_limit", id="n-x-assumed-4096"),
    ],
)
async def test_requests_over_the_bounds_are_400_before_any_engine_work(
    gw: RunningGateway, engine: FakeVllm, extra: dict[str, object], param: str, code: str
) -> None:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.completions.create(model="tiny", prompt="x", extra_body=extra)
    assert refused.value.code == code
    assert refused.value.param == param
    assert engine.requests == 0


async def test_a_batch_completion_counts_every_prompt(gw: RunningGateway, engine: FakeVllm) -> None:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError, match="10000 per request"):
            await client.completions.create(model="tiny", prompt=["a"] * 11, max_tokens=1000, n=1)
        reply = await client.completions.create(model="tiny", prompt="x", max_tokens=1000, n=10)
    assert reply.choices
    assert engine.requests == 1


def _running(engine: SimEngine) -> int:
    return int(engine.core.num_running + len(engine.core.waiting))


async def test_engine_work_stops_when_the_client_leaves_for_every_n() -> None:
    async with (
        sim_fleet(profile="tiny", time_scale=0.01) as fleet,
        run_gateway(discovery="static", upstreams=[f"sim={fleet.urls[0]}"]) as gw,
        aiohttp.ClientSession() as http,
    ):
        engine = fleet.engines[0]
        body = {"model": "sim", "prompt": "x", "n": 16, "max_tokens": 500, "ignore_eos": True}
        request = asyncio.create_task(http.post(gw.url + "/v1/completions", json=body))
        await wait_until(lambda: _running(engine) == 16, timeout_s=20)
        request.cancel()  # the client goes away
        with contextlib.suppress(asyncio.CancelledError):
            await request
        await wait_until(lambda: _running(engine) == 0, timeout_s=20)


async def test_a_request_head_that_never_ends_is_closed(engine: FakeVllm) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"HOIST_GATEWAY_HEADER_TIMEOUT_S": "0.5", "LOG_LEVEL": "warning"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_plane.gateway", "--port", str(port),
        "--discovery", "static", "--upstream", f"tiny={engine.url}",
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(20):
            while True:
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
        for partial in (b"", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(partial)
            await writer.drain()
            async with asyncio.timeout(30):  # the gateway closes long before this
                assert await reader.read() == b""
            writer.close()
        # A whole head is served as usual, on a connection that stays open past the deadline.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        # ... and the next head on that kept-alive connection, left unfinished, closes it.
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1.0)  # past the deadline: it counts from the next head's first byte
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        await writer.drain()
        async with asyncio.timeout(30):
            rest = await reader.read()
        assert b"HTTP/1.1" not in rest  # closed without an answer
        writer.close()
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"POST /v1/completions HTTP/1.1\r\n", id="proxied-route"),
        pytest.param(b"PUT /v1/adapters/late HTTP/1.1\r\n", id="adapter-api"),
    ],
)
async def test_a_body_that_never_comes_is_408_and_closed(engine: FakeVllm, head: bytes) -> None:
    """The head is whole, the body announced and never sent: uvicorn alone would wait for it
    as long as the client holds the connection."""
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"], body_timeout_s=0.3) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            head + b"host: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
        )
        await writer.drain()
        reply = await client.completions.create(model="tiny", prompt="x", max_tokens=1)
        assert reply.choices  # others are served meanwhile
        async with asyncio.timeout(10):  # the deadline is 0.3 s
            answer = await reader.read()  # to the end: the gateway closes the connection
        head_bytes, _, body = answer.partition(b"\r\n\r\n")
        assert head_bytes.startswith(b"HTTP/1.1 408")
        assert orjson.loads(body)["error"]["code"] == "request_timeout"
        writer.close()


async def test_a_head_over_the_bound_is_431_and_closed(engine: FakeVllm) -> None:
    """httptools buffers a head whole: without a bound one client could send gigabytes of
    header within the head deadline."""
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw,
        aiohttp.ClientSession() as http,
    ):
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\nx-big: ")
        with contextlib.suppress(ConnectionError):  # it may close before all is written
            for _ in range(64):  # 4 MiB, far past the 64 KiB bound
                writer.write(b"a" * 65536)
                await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431")
        assert orjson.loads(body)["error"]["code"] == "request_header_too_large"
        writer.close()
        # Within the bound, a long header and a large body in the same write are served.
        payload = {"model": "tiny", "prompt": "x" * 200_000, "max_tokens": 1}
        headers = {f"x-long-{i}": "b" * 7000 for i in range(7)}  # the engine's limit: 8 KiB each
        async with http.post(gw.url + "/v1/completions", json=payload, headers=headers) as resp:
            assert resp.status == 200
