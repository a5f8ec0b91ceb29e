"""A fast, fixed-answer upstream for gateway benchmarks (uvloop + httptools, no framework).

POST: a small chat completion; with `"stream": true` in the body, `--tokens` SSE chunks,
one every `--token-interval-s` (20 tokens/s by default), then `data: [DONE]`.
GET (any path, e.g. /health, /v1/models): 200 `{}`. Keep-alive, HTTP/1.1.

    python bench/static_upstream.py --port 9000 [--tokens 64] [--token-interval-s 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httptools
import uvloop

REPLY = (
    b'{"id":"cmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'
)
CHUNK = (
    b'data: {"id":"cmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}\n\n'
)


def _response(status: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


POST_REPLY = _response(b"200 OK", REPLY)
GET_REPLY = _response(b"200 OK", b"{}")
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Upstream(asyncio.Protocol):
    def __init__(self, tokens: int, interval: float) -> None:
        self.tokens = tokens
        self.interval = interval
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() != b"POST":
            self.transport.write(GET_REPLY)
            return
        body = b"".join(self.body)
        if b'"stream":true' in body.replace(b" ", b""):
            asyncio.get_running_loop().create_task(self.stream())
        else:
            self.transport.write(POST_REPLY)

    async def stream(self) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(STREAM_HEAD)
        for _ in range(self.tokens):
            await asyncio.sleep(self.interval)
            if transport.is_closing():
                return
            transport.write(_chunked(CHUNK))
        transport.write(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def serve(host: str, port: int, tokens: int, interval: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Upstream(tokens, interval), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--token-interval-s", type=float, default=0.05)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.tokens, args.token_interval_s))


if __name__ == "__main__":
    main()
