"""Under real uvicorn, each answer's head waits for its body, and only for it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from data_plane.gateway.http_protocol import gateway_protocol
from data_plane.gateway.proxy import Receive, Scope, Send
from tests.support.waiting import wait_until


class App:
    """`/slow` starts its answer, then sends the body once told to; anything else answers
    at once with its path."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"].encode()
        if scope["path"] == "/slow":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await self.go.wait()
            await send({"type": "http.response.body", "body": b"late", "more_body": False})
            return
        headers = [(b"content-length", str(len(path)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": path})


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, App]]:
    app = App()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=gateway_protocol(10.0), log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, timeout_s=20)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_answers_on_one_kept_alive_connection_arrive_whole_and_in_order(
    served: tuple[str, App],
) -> None:
    url, _ = served
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1)) as http:
        for path in ("/a", "/bb", "/ccc", "/"):
            answer = await http.get(path)
            assert answer.status_code == 200
            assert answer.text == path


async def test_a_head_whose_body_is_late_reaches_the_client_before_it(
    served: tuple[str, App],
) -> None:
    url, app = served
    async with (
        httpx.AsyncClient(base_url=url) as http,
        asyncio.timeout(30),
        http.stream("GET", "/slow") as answer,
    ):
        # Here only if the head left without its body: the body is not sent until `go`.
        assert answer.status_code == 200
        app.go.set()
        assert await answer.aread() == b"late"
