"""A TCP relay on loopback that a test can cut: the network between a client and a server.

`sever()` drops every open connection (a client mid-watch sees its stream end with an
error); while `refusing` is set, new connections are closed at once, as if the server
were unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Relay:
    url: str
    refusing: bool = False
    accepted: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def sever(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()


@asynccontextmanager
async def tcp_relay(host: str, port: int) -> AsyncIterator[Relay]:
    """A relay listening on 127.0.0.1 (ephemeral port) in front of `host:port`."""
    relay = Relay(url="")
    pipes: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relay.accepted += 1
        if relay.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.transport.abort()
            return
        relay._writers.update((writer, up_writer))
        both = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        pipes.update(both)
        try:
            await asyncio.gather(*both)
        finally:
            pipes.difference_update(both)
            relay._writers.difference_update((writer, up_writer))
            writer.transport.abort()
            up_writer.transport.abort()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    relay.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield relay
    finally:
        server.close()
        relay.sever()
        for task in list(pipes):
            task.cancel()
        for task in list(pipes):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()
