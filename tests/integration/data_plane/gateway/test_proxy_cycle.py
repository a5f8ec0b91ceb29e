"""The proxy routes on the gateway's own protocol (proxy/cycle.py, no ASGI cycle): HTTP/1.1
as a client expects it, byte for byte on a raw socket; the same routes over ASGI; and the
connection's tick that closes idle kept-alive connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import orjson
import pytest
import uvicorn
from aiohttp import web

from data_plane.gateway.__main__ import build
from data_plane.gateway.http_protocol import gateway_protocol
from data_plane.gateway.settings import GatewaySettings
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.waiting import wait_until


@pytest.fixture
async def gw(engine: FakeVllm) -> AsyncIterator[RunningGateway]:
    async with run_gateway(
        discovery="static", upstreams=[f"tiny={engine.url}"], max_body_bytes=4096
    ) as running:
        yield running


def _request(prompt: str, *, path: bytes = b"/v1/completions", version: bytes = b"1.1") -> bytes:
    body = orjson.dumps({"model": "tiny", "prompt": prompt, "max_tokens": 1})
    return (
        b"POST %b HTTP/%b\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%b" % (path, version, len(body), body)
    )


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One answer off the connection: status line, headers (names in lower case), body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while size := int((await reader.readline()).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)
        return status, headers, body
    return status, headers, await reader.readexactly(int(headers[b"content-length"]))


@contextlib.asynccontextmanager
async def _connection(
    gw: RunningGateway,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = int(gw.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(20):
            yield reader, writer
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order(
    gw: RunningGateway, engine: FakeVllm
) -> None:
    async with _connection(gw) as (reader, writer):
        writer.write(_request("one") + _request("two") + _request("three"))
        answers = [await _answer(reader) for _ in range(3)]
    assert [status for status, _, _ in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert len({headers[b"x-request-id"] for _, headers, _ in answers}) == 3
    assert [orjson.loads(body)["prompt"] for body in engine.bodies] == ["one", "two", "three"]
    for _, headers, body in answers:
        assert orjson.loads(body)["choices"]
        assert headers[b"content-type"].startswith(b"application/json")  # the engine's
        assert b"date" in headers


async def test_an_http_1_0_client_gets_its_answer_then_a_close(gw: RunningGateway) -> None:
    async with _connection(gw) as (reader, writer):
        writer.write(_request("old", version=b"1.0"))
        status, headers, _ = await _answer(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert headers[b"connection"] == b"close"
        assert await reader.read() == b""  # closed


async def test_expect_100_continue_is_answered_before_the_body(gw: RunningGateway) -> None:
    body = orjson.dumps({"model": "tiny", "prompt": "later", "max_tokens": 1})
    async with _connection(gw) as (reader, writer):
        writer.write(
            b"POST /v1/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        status, _, answer = await _answer(reader)
    assert status == b"HTTP/1.1 200 OK"
    assert orjson.loads(answer)["choices"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_past_the_bound_is_413_and_never_reaches_the_engine(
    gw: RunningGateway, engine: FakeVllm, declared: bool
) -> None:
    body = orjson.dumps({"model": "tiny", "prompt": "x" * 8000, "max_tokens": 1})
    if declared:
        framing = b"content-length: %d\r\n\r\n%b" % (len(body), body)
    else:
        framing = b"transfer-encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    async with _connection(gw) as (reader, writer):
        writer.write(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\n" + framing)
        status, _, answer = await _answer(reader)
        assert status.startswith(b"HTTP/1.1 413")
        assert orjson.loads(answer)["error"]["code"] == "request_too_large"
        writer.write(_request("small"))  # the connection still serves
        status, _, _ = await _answer(reader)
        assert status == b"HTTP/1.1 200 OK"
    assert [orjson.loads(b)["prompt"] for b in engine.bodies] == ["small"]


async def test_a_percent_escaped_path_is_the_same_route_over_asgi(
    gw: RunningGateway, engine: FakeVllm
) -> None:
    """The protocol serves only the exact path; written with escapes, the request goes
    through uvicorn's ASGI cycle to the same endpoint (AsgiConn)."""
    async with _connection(gw) as (reader, writer):
        writer.write(_request("escaped", path=b"/v1/%63ompletions") + _request("plain"))
        escaped, plain = await _answer(reader), await _answer(reader)
    for status, headers, body in (escaped, plain):
        assert status == b"HTTP/1.1 200 OK"
        assert headers[b"x-request-id"]
        assert orjson.loads(body)["choices"]
    assert [orjson.loads(b)["prompt"] for b in engine.bodies] == ["escaped", "plain"]


async def test_a_client_gone_mid_request_cancels_the_engine_request() -> None:
    engine = FakeVllm("tiny", tokens=200, token_delay_s=0.05)
    await engine.start()
    try:
        async with run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw:
            async with _connection(gw) as (_, writer):
                writer.write(_request("long"))
                await wait_until(lambda: engine.in_flight == 1, timeout_s=10)
            await wait_until(lambda: engine.in_flight == 0, timeout_s=10)  # long before 10 s
            assert gw.gateway.fleet.models["tiny"].replicas[0].in_flight == 0
    finally:
        await engine.stop()


async def test_an_idle_kept_alive_connection_is_closed_by_its_tick(engine: FakeVllm) -> None:
    settings = GatewaySettings(discovery="static", upstreams=[f"tiny={engine.url}"], port=0)
    app = build(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=0.3,
        http=gateway_protocol(10.0, routes=app.proxy_handlers()),
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout_s=20)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(20):  # the keep-alive is 0.3 s
            for prompt in ("a", "b"):  # kept alive while used
                writer.write(_request(prompt))
                status, headers, _ = await _answer(reader)
                assert status == b"HTTP/1.1 200 OK"
                assert b"connection" not in headers
            assert await reader.read() == b""  # then closed once idle
        writer.close()
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_slow_reader_of_a_large_stream_gets_every_byte() -> None:
    """The engine streams faster than the client reads: the gateway's writes back up, it
    stops reading the engine until the client catches up, and nothing is lost."""
    event = b"data: " + b"x" * 65530 + b"\n\n"  # 64 KiB per event
    events = 96  # 6 MiB, far past the socket buffers on the way

    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        for _ in range(events):
            await answer.write(event)
        await answer.write(b"data: [DONE]\n\n")
        await answer.write_eof()
        return answer

    upstream = web.Application()
    upstream.router.add_post("/v1/completions", stream)
    runner = web.AppRunner(upstream, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with (
            run_gateway(discovery="static", upstreams=[f"tiny=http://127.0.0.1:{port}"]) as gw,
            _connection(gw) as (reader, writer),
        ):
            body = b'{"model": "tiny", "prompt": "x", "stream": true}'
            writer.write(
                b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b"
                % (len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            received = bytearray()
            while size := int((await reader.readline()).strip(), 16):
                received += await reader.readexactly(size)
                await reader.readexactly(2)
                await asyncio.sleep(0.002)  # a slow reader
            await reader.readexactly(2)
    finally:
        await runner.cleanup()
    assert bytes(received) == event * events + b"data: [DONE]\n\n"
