"""The sidecar client against real HTTP answers: which errors are temporary, which refusals."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from control_plane.lora_manager.placement import SidecarPhase
from control_plane.lora_manager.sidecar_client import (
    SidecarClient,
    SidecarRefusedError,
    SidecarUnreachableError,
)

ANSWERS: dict[str, tuple[int, object]] = {
    "ok": (200, {"name": "ok", "phase": "Loaded", "source": "/a", "sha256": "f" * 64}),
    "later": (202, {"name": "later", "phase": "Loading", "source": "/a"}),
    "missing": (422, {"error": {"message": "no file", "reason": "SourceNotFound"}}),
    "download": (
        502,
        {"error": {"message": "GET x answered HTTP 404", "reason": "DownloadFailed"}},
    ),
    "draining": (503, {"error": {"message": "shutting down", "reason": "Draining"}}),
    "crash": (500, "Internal Server Error"),
}


@pytest.fixture
async def sidecar() -> AsyncIterator[str]:
    async def put(request: web.Request) -> web.Response:
        status, body = ANSWERS[request.match_info["name"]]
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)

    async def listing(_: web.Request) -> web.Response:
        return web.json_response(
            {"items": [ANSWERS["ok"][1], {"bad": "entry"}, {"name": "x", "phase": "??"}]}
        )

    async def delete(request: web.Request) -> web.Response:
        return web.json_response({"error": {"reason": "NotFound"}}, status=404)

    app = web.Application()
    app.router.add_put("/adapters/{name}", put)
    app.router.add_get("/adapters", listing)
    app.router.add_delete("/adapters/{name}", delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_answers_are_classified(sidecar: str) -> None:
    async with aiohttp.ClientSession() as session:
        client = SidecarClient(session, timeout_seconds=5)
        assert (await client.load(sidecar, "ok", "/a", None)).phase is SidecarPhase.LOADED
        assert (await client.load(sidecar, "later", "/a", None)).phase is SidecarPhase.LOADING
        for name, reason in (("missing", "SourceNotFound"), ("download", "DownloadFailed")):
            with pytest.raises(SidecarRefusedError) as refused:
                await client.load(sidecar, name, "/a", None)
            assert refused.value.reason == reason
        for name in ("draining", "crash"):
            with pytest.raises(SidecarUnreachableError):
                await client.load(sidecar, name, "/a", None)
        await client.unload(sidecar, "gone")  # 404: already gone is success
        held = await client.adapters(sidecar)
        assert set(held) == {"ok", "x"}
        assert held["x"].phase is SidecarPhase.LOADING  # an unknown phase is not trusted as loaded


async def test_no_sidecar_is_unreachable() -> None:
    with socket.socket() as probe:  # an ephemeral port nobody listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        client = SidecarClient(session, timeout_seconds=2)
        with pytest.raises(SidecarUnreachableError):
            await client.adapters(f"http://127.0.0.1:{port}")
