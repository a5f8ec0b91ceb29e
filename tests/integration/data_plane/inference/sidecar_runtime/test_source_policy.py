"""The sidecar's source policy against real HTTP on 127.0.0.1 (docs/security.md, probes).

Every server here listens on loopback, which the default policy refuses: a test that
expects a refusal also checks that the server saw no request at all; a test that expects
a download lists 127.0.0.1 as a trusted host, as an operator would an internal store.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import web

from tests.integration.data_plane.inference.sidecar_runtime.conftest import (
    StandInEngine,
    run_sidecar,
)
from tests.support.ports import free_port


def _archive() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("adapter_config.json", b'{"r": 8}'), ("w.safetensors", b"w" * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class Origin:
    """An HTTP server on 127.0.0.1 that counts what it was asked."""

    url: str = ""
    port: int = 0
    seen: list[str] = field(default_factory=list)
    redirect_to: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path)
        if request.path == "/adapter.tar.gz":
            return web.Response(body=_archive())
        if request.path == "/redirect":
            raise web.HTTPFound(self.redirect_to)
        return web.Response(status=403, text="internal admin API: token sk-secret-123")


@contextlib.asynccontextmanager
async def origin() -> AsyncIterator[Origin]:
    server = Origin(port=free_port())
    server.url = f"http://127.0.0.1:{server.port}"
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


async def put(url: str, name: str, source: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.put(f"{url}/adapters/{name}", json={"source": source})


async def test_loopback_by_address_or_by_name_is_refused_before_any_request(
    engine: StandInEngine, tmp_path: Path
) -> None:
    async with (
        origin() as internal,
        run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log", schemes="http https") as sc,
    ):
        for source in (
            f"{internal.url}/v1/state",
            f"http://localhost:{internal.port}/v1/state",  # a name that resolves to loopback
            f"http://[::ffff:127.0.0.1]:{internal.port}/v1/state",
        ):
            response = await put(sc.url, "probe", source)
            assert response.status_code == 422, (source, response.text)
            error = response.json()["error"]
            assert error["reason"] == "SourceNotAllowed"
            assert "loopback" in error["message"]
        assert internal.seen == []


async def test_a_trusted_host_downloads_and_its_answers_never_reach_the_refusal(
    engine: StandInEngine, tmp_path: Path
) -> None:
    async with (
        origin() as store,
        run_sidecar(
            engine.url, tmp_path / "dir", tmp_path / "log", schemes="http", hosts="127.0.0.1"
        ) as sc,
    ):
        loaded = await put(sc.url, "good", f"{store.url}/adapter.tar.gz")
        assert loaded.status_code in (200, 202), loaded.text
        refused = await put(sc.url, "bad", f"{store.url}/admin")
        assert refused.status_code == 502
        error = refused.json()["error"]
        assert error["reason"] == "DownloadFailed"
        for leak in ("403", "sk-secret", "admin API"):
            assert leak not in refused.text


async def test_a_redirect_is_checked_before_it_is_followed(
    engine: StandInEngine, tmp_path: Path
) -> None:
    async with (
        origin() as trusted,
        origin() as internal,
        run_sidecar(
            engine.url, tmp_path / "dir", tmp_path / "log", schemes="http", hosts="127.0.0.1"
        ) as sc,
    ):
        trusted.redirect_to = f"http://localhost:{internal.port}/adapter.tar.gz"
        response = await put(sc.url, "hop", f"{trusted.url}/redirect")
        assert response.status_code == 422, response.text
        assert "not allowed" in response.json()["error"]["message"]
        assert trusted.seen == ["/redirect"]
        assert internal.seen == []
        trusted.redirect_to = "file:///etc/passwd"
        response = await put(sc.url, "hop", f"{trusted.url}/redirect")
        assert response.status_code == 422, response.text


async def test_local_paths_outside_the_roots_and_relative_paths_are_refused(
    engine: StandInEngine, tmp_path: Path
) -> None:
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sc:
        for source in ("/etc", "adapters/a", str(tmp_path / "dir" / "adapters")):
            response = await put(sc.url, "probe", source)
            assert response.status_code == 422, (source, response.text)
            assert response.json()["error"]["reason"] == "SourceNotAllowed"
