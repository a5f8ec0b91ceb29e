"""The hot path's HTTP client against real sockets on loopback, with scripted servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from data_plane.gateway.upstream_client import (
    Address,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamDisconnectedError,
    UpstreamIdleError,
    UpstreamProtocolError,
)
from tests.support.ports import free_port
from tests.support.waiting import wait_until

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"POST /v1/completions HTTP/1.1\r\nhost: upstream\r\ncontent-length: 2\r\n\r\n"


class Server:
    """A loopback server that runs `handler` per connection and counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_by_peer = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[Server, Address]]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server, ("127.0.0.1", port, False)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


def reply(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%b\r\n%b" % (len(body), extra, body)


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        body = await read_request(reader)
        writer.write(reply(b"echo " + body))
        await writer.drain()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    c = UpstreamClient(connect_timeout_s=2)
    yield c
    await c.close()
    assert c.open_connections == 0


async def test_answers_reuse_one_keep_alive_connection(client: UpstreamClient) -> None:
    async with serving(echo_forever) as (server, address):
        for i in range(3):
            response = await client.post(address, HEAD, b"%02d" % i)
            assert response.status == 200
            assert (b"content-length", b"7") in response.headers
            assert await response.read() == b"echo %02d" % i
            response.release()
        assert server.connections == 1
        assert client.idle_connections(address) == 1


async def test_a_chunked_stream_arrives_piece_by_piece(client: UpstreamClient) -> None:
    go_on = asyncio.Event()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n")
        await go_on.wait()
        writer.write(b"3\r\nend\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()  # keep the connection open: the answer ended by its framing

    async with serving(stream) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        assert await response.readany() == b"data: "  # before the rest was even written
        go_on.set()
        assert await response.readany() == b"end"
        assert await response.readany() == b""
        response.release()
        assert client.idle_connections(address) == 1


async def test_a_connection_the_upstream_closed_while_idle_is_replaced(
    client: UpstreamClient,
) -> None:
    async def one_answer_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        body = await read_request(reader)
        writer.write(reply(body))  # says keep-alive, then closes anyway (a keep-alive timeout)
        await writer.drain()

    async with serving(one_answer_per_connection) as (server, address):
        first = await client.post(address, HEAD, b"a1")
        assert await first.read() == b"a1"
        first.release()
        await asyncio.sleep(0.05)  # the close reaches the client, or not: both must work
        second = await client.post(address, HEAD, b"a2")
        assert await second.read() == b"a2"
        second.close()
        assert server.connections == 2


async def test_expired_idle_connections_are_closed_while_a_warm_one_is_reused() -> None:
    client = UpstreamClient(connect_timeout_s=2, keepalive_s=0.5)
    try:
        async with serving(echo_forever) as (server, address):
            burst = [await client.post(address, HEAD, b"b%d" % i) for i in range(2)]
            for response in burst:
                await response.read()
                response.release()
            assert client.open_connections == 2
            loop = asyncio.get_running_loop()
            until = loop.time() + 2 * client.keepalive_s
            while loop.time() < until:  # one request at a time: the warmest one serves it
                response = await client.post(address, HEAD, b"ok")
                await response.read()
                response.release()
                await asyncio.sleep(0.05)
            assert server.connections == 2
            await wait_until(lambda: client.open_connections == 1)
    finally:
        await client.close()


async def test_a_connection_closed_mid_answer_is_an_error(client: UpstreamClient) -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()

    async with serving(half) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        assert await response.readany() == b"partial"
        with pytest.raises(UpstreamDisconnectedError):
            await response.readany()
        response.close()


async def test_no_answer_at_all_on_a_new_connection_is_an_error(client: UpstreamClient) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serving(hang_up) as (_, address):
        with pytest.raises(UpstreamDisconnectedError):
            await client.post(address, HEAD, b"{}")


async def test_an_unreachable_upstream_is_a_connect_error(client: UpstreamClient) -> None:
    with pytest.raises(UpstreamConnectError, match="cannot connect"):
        await client.post(("127.0.0.1", free_port(), False), HEAD, b"{}")


async def test_bytes_that_are_not_http_are_a_protocol_error(client: UpstreamClient) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serving(garbage) as (_, address):
        with pytest.raises(UpstreamProtocolError, match="invalid HTTP"):
            await client.post(address, HEAD, b"{}")


async def test_closing_an_unfinished_answer_closes_its_connection(client: UpstreamClient) -> None:
    upstream_saw_eof = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n")
        await writer.drain()
        if await reader.read() == b"":
            upstream_saw_eof.set()  # the engine would abort the generation now

    async with serving(endless) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        assert await response.readany() == b"x"
        response.close()
        await asyncio.wait_for(upstream_saw_eof.wait(), 10)
        assert client.idle_connections(address) == 0


async def test_connection_close_and_eof_delimited_answers(client: UpstreamClient) -> None:
    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async with serving(old_style) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        assert await response.read() == b"until the end"
        response.release()
        assert client.idle_connections(address) == 0


PIECE = bytes(range(256)) * 256  # 64 KiB
PIECES = 64
"""A large stream: 4 MiB, beyond the high-water mark and the sockets' buffers."""


async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    for _ in range(PIECES):
        writer.write(b"%x\r\n%b\r\n" % (len(PIECE), PIECE))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    await reader.read()


async def test_a_slow_reader_gets_every_byte_of_a_large_stream(client: UpstreamClient) -> None:
    async with serving(large) as (_, address):  # reading pauses and resumes
        response = await client.post(address, HEAD, b"{}")
        received = bytearray()
        while chunk := await response.readany():
            received += chunk
            await asyncio.sleep(0.001)
        response.release()
    assert len(received) == len(PIECE) * PIECES
    assert bytes(received[: len(PIECE)]) == PIECE


async def test_a_closed_client_closes_its_connections_and_refuses_more() -> None:
    client = UpstreamClient(connect_timeout_s=2)
    async with serving(echo_forever) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        await response.read()
        response.release()
        assert client.open_connections == 1
        await client.close()
        assert client.open_connections == 0
        with pytest.raises(UpstreamConnectError, match="closed"):
            await client.post(address, HEAD, b"{}")


async def test_a_tracked_stream_notes_its_last_data_and_can_be_aborted(
    client: UpstreamClient,
) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(3):
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        await reader.read()  # ...then silence, connection open

    async with serving(stall) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        response.track_data()
        tracked_at = response.last_data
        received = b""
        while len(received) < 3:
            received += await response.readany()
        assert received == b"xxx"
        assert response.last_data > tracked_at  # the chunks moved the stamp
        reading = asyncio.create_task(response.readany())
        await asyncio.sleep(0.05)
        assert not reading.done()  # silent, and nothing times out by itself
        response.abort(UpstreamIdleError("no data for a while"))
        with pytest.raises(UpstreamIdleError, match="no data"):
            await reading
        response.close()
        await wait_until(lambda: client.open_connections == 0)


async def test_a_large_answer_read_whole_is_not_held_back(client: UpstreamClient) -> None:
    """Back-pressure is for streams read piece by piece; `read()` takes everything."""
    body = bytes(range(256)) * (4 * 4096)  # 4 MiB, beyond the high-water mark

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(reply(body))
            await writer.drain()

    async with serving(large) as (server, address):
        for _ in range(2):  # and the connection is reusable afterwards
            response = await asyncio.wait_for(client.post(address, HEAD, b"{}"), 30)
            assert await asyncio.wait_for(response.read(), 30) == body
            response.release()
        assert server.connections == 1


async def test_a_piped_stream_reaches_its_sink_and_pauses_while_it_is_backed_up(
    client: UpstreamClient,
) -> None:
    received = bytearray()
    room = [0]

    def sink(data: bytes) -> bool:
        received.extend(data)
        room[0] -= len(data)
        return room[0] > 0  # backed up once a megabyte came since the last drain

    async with serving(large) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        received += await response.readany()
        response.pipe(sink)
        pauses = 0
        while not await response.piped():
            pauses += 1
            room[0] = 1 << 20
            await asyncio.sleep(0.001)  # the sink drains
            response.resume()
        response.release()
        assert client.idle_connections(address) == 1  # whole: it goes back to the pool
    assert pauses > 1
    assert bytes(received) == PIECE * PIECES


async def test_a_piped_stream_that_breaks_raises_from_piped(client: UpstreamClient) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n")
        await writer.drain()
        writer.write(b"6\r\nagain ")
        await writer.drain()

    async with serving(broken) as (_, address):
        response = await client.post(address, HEAD, b"{}")
        got: list[bytes] = []
        response.pipe(lambda data: got.append(data) is None)
        with pytest.raises(UpstreamDisconnectedError):
            await response.piped()
        response.close()
    assert b"".join(got).startswith(b"data: ")
