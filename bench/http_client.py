"""Which async HTTP client should the gateway pool? aiohttp vs httpx under concurrency.

Both clients send the same small POSTs, at the same concurrency, to the same upstream: a
minimal aiohttp server in its own process on 127.0.0.1 (so client and server do not share
an event loop). Rounds alternate between the clients to spread the machine's noise.

    .venv/bin/python bench/http_client.py [--concurrency 256] [--requests 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from aiohttp import web

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
REPLY = b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}'


def serve(port: int) -> None:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=REPLY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def drive(send: Callable[[], Awaitable[None]], total: int, concurrency: int) -> float:
    """Requests per second for `total` requests, `concurrency` at a time."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def with_aiohttp(url: str, total: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(
                url, data=BODY, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()

        return await drive(send, total, concurrency)


async def with_httpx(url: str, total: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def send() -> None:
            response = await client.post(
                url, content=BODY, headers={"Content-Type": "application/json"}
            )
            await response.aread()

        return await drive(send, total, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        results: dict[str, list[float]] = {"aiohttp": [], "httpx": []}
        for _ in range(args.rounds):
            results["aiohttp"].append(
                asyncio.run(with_aiohttp(url, args.requests, args.concurrency))
            )
            results["httpx"].append(asyncio.run(with_httpx(url, args.requests, args.concurrency)))
        a, h = statistics.median(results["aiohttp"]), statistics.median(results["httpx"])
        print(f"concurrency {args.concurrency}, {args.requests} requests x {args.rounds} rounds")
        print("| client | median req/s | rounds |\n|---|---|---|")
        for name, values in results.items():
            print(
                f"| {name} | {statistics.median(values):,.0f} | {', '.join(f'{v:,.0f}' for v in values)} |"
            )
        print(f"aiohttp / httpx = {a / h:.1f}x")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
