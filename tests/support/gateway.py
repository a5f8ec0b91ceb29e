"""Run the gateway in the test's own event loop, on an ephemeral port (real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from data_plane.gateway.__main__ import build
from data_plane.gateway.app import HotPaths
from data_plane.gateway.http_protocol import gateway_protocol
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.settings import GatewaySettings


@dataclass
class RunningGateway:
    url: str
    app: HotPaths

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.app.state.gateway
        return gateway


@asynccontextmanager
async def run_gateway(**settings: Any) -> AsyncIterator[RunningGateway]:
    settings.setdefault("port", 0)
    settings.setdefault("load_poll_interval_s", 0)
    gateway_settings = GatewaySettings(**settings)
    app = build(gateway_settings)
    config = uvicorn.Config(  # the production protocol (head deadline, one write per answer)
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="none",
        access_log=False, http=gateway_protocol(
            gateway_settings.header_timeout_s,
            gateway_settings.body_timeout_s,
            gateway_settings.max_header_bytes,
            max_body_bytes=gateway_settings.max_body_bytes,
            routes=app.proxy_handlers(),
        ),
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the gateway exited during start-up")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningGateway(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
