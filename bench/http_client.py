"""Which async HTTP client should the gateway use upstream? aiohttp, httpx, and the gateway's
own hot-path client (data_plane/gateway/upstream_client.py) under concurrency.

Every client sends the same small POSTs, at the same concurrency, to the same upstream: a
minimal aiohttp server in its own process on 127.0.0.1 (so client and server do not share
an event loop). Rounds alternate between the clients to spread the machine's noise. Besides
requests per second (bounded by the server), the client's own CPU time per request: what
a proxy pays for each request it forwards.

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

from data_plane.gateway.upstream_client import UpstreamClient

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
REPLY = b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}'


def serve(port: int) -> None:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=REPLY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def drive(
    send: Callable[[], Awaitable[None]], total: int, concurrency: int
) -> tuple[float, float]:
    """Requests per second and client CPU microseconds per request, for `total` requests,
    `concurrency` at a time."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), (time.process_time() - cpu) / total * 1e6


async def with_aiohttp(url: str, total: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(
                url, data=BODY, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()

        return await drive(send, total, concurrency)


async def with_hoist(url: str, total: int, concurrency: int) -> tuple[float, float]:
    host_port, path = url.removeprefix("http://").split("/", 1)
    host, port = host_port.split(":")
    head = (
        f"POST /{path} HTTP/1.1\r\nhost: {host_port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(BODY)}\r\n\r\n"
    ).encode()
    client = UpstreamClient(connect_timeout_s=10)
    address = (host, int(port), False)

    async def send() -> None:
        response = await client.post(address, head, BODY)
        await response.read()
        response.release()

    try:
        return await drive(send, total, concurrency)
    finally:
        await client.close()


async def with_httpx(url: str, total: int, concurrency: int) -> tuple[float, float]:
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
        clients = {"aiohttp": with_aiohttp, "httpx": with_httpx, "hoist": with_hoist}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, run in clients.items():
                results[name].append(asyncio.run(run(url, args.requests, args.concurrency)))
        print(f"concurrency {args.concurrency}, {args.requests} requests x {args.rounds} rounds")
        print("| client | median req/s | client CPU us/request | rounds (req/s) |")
        print("|---|---:|---:|---|")
        med = {
            name: (statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs))
            for name, runs in results.items()
        }
        for name, runs in results.items():
            rounds = ", ".join(f"{r:,.0f}" for r, _ in runs)
            print(f"| {name} | {med[name][0]:,.0f} | {med[name][1]:.0f} | {rounds} |")
        print(f"aiohttp / httpx = {med['aiohttp'][0] / med['httpx'][0]:.1f}x requests/s")
        print(f"hoist / aiohttp = {med['aiohttp'][1] / med['hoist'][1]:.2f}x less client CPU")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
