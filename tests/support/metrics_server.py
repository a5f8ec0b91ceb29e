"""A loopback HTTP server that serves Prometheus text per path, set by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class MetricsServer:
    """`texts[who]` is served at `{base}/{who}/metrics`; an unknown `who` answers 503."""

    base: str = ""
    texts: dict[str, str] = field(default_factory=dict)

    def url(self, who: str) -> str:
        return f"{self.base}/{who}/metrics"


@asynccontextmanager
async def metrics_server() -> AsyncIterator[MetricsServer]:
    ms = MetricsServer()

    async def serve(request: web.Request) -> web.Response:
        text = ms.texts.get(request.match_info["who"])
        if text is None:
            return web.Response(status=503)
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/{who}/metrics", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ms.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield ms
    finally:
        await runner.cleanup()


def engine_text(model: str, running: float, waiting: float = 0) -> str:
    return (
        f'vllm:num_requests_running{{model_name="{model}"}} {running}\n'
        f'vllm:num_requests_waiting{{model_name="{model}"}} {waiting}\n'
    )


def gateway_text(model: str, in_flight: int, held: int) -> str:
    return (
        f'gateway_in_flight_requests{{model="{model}"}} {in_flight}\n'
        f'gateway_queued_requests{{model="{model}",reason="cold_start"}} {held}\n'
    )
