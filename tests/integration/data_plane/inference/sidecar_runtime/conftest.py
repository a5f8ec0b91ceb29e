"""A stand-in engine (real HTTP on 127.0.0.1) with vLLM's LoRA endpoints, and a sidecar process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.support.ports import free_port


@dataclass
class StandInEngine:
    """vLLM's `/health`, `/v1/models` and runtime LoRA routes, with switches for tests."""

    healthy: bool = True
    frozen: bool = False
    """`/health` accepts and does not answer while set (a hung engine)."""
    adapters: dict[str, str] = field(default_factory=dict)
    load_delay: float = 0.0
    loads: list[str] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/load_lora_adapter", self._load)
        app.router.add_post("/v1/unload_lora_adapter", self._unload)
        return app

    async def _health(self, _: web.Request) -> web.Response:
        while self.frozen:  # noqa: ASYNC110 - a flag the test flips
            await asyncio.sleep(0.05)
        return web.Response(status=200 if self.healthy else 503)

    async def _models(self, _: web.Request) -> web.Response:
        if not self.healthy:
            return web.Response(status=503)
        data = [{"id": "base", "parent": None}] + [
            {"id": name, "parent": "base", "root": path} for name, path in self.adapters.items()
        ]
        return web.json_response({"object": "list", "data": data})

    async def _load(self, request: web.Request) -> web.Response:
        if not self.healthy:
            return web.Response(status=503)
        body = await request.json()
        name, path = body["lora_name"], body["lora_path"]
        await asyncio.sleep(self.load_delay)
        if name in self.adapters:
            message = f"The lora adapter '{name}' has already been loaded."
            return web.json_response({"error": {"message": message}}, status=400)
        if not (Path(path) / "adapter_config.json").is_file():
            return web.json_response({"error": {"message": "bad adapter"}}, status=500)
        self.adapters[name] = path
        self.loads.append(name)
        return web.Response(text="Success")

    async def _unload(self, request: web.Request) -> web.Response:
        name = (await request.json())["lora_name"]
        if self.adapters.pop(name, None) is None:
            return web.json_response({"error": {"message": "cannot be found"}}, status=404)
        return web.Response(text="Success")


@pytest.fixture
async def engine() -> AsyncIterator[StandInEngine]:
    stand_in = StandInEngine()
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    stand_in.url = f"http://127.0.0.1:{port}"
    try:
        yield stand_in
    finally:
        stand_in.frozen = False
        await runner.cleanup()


@dataclass
class Sidecar:
    process: subprocess.Popen[bytes]
    url: str
    adapter_dir: Path
    log: Path


def make_adapter(path: Path, payload: bytes = b"weights") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text('{"r": 8}')
    (path / "adapter_model.safetensors").write_bytes(payload)
    return path


async def _exited(process: subprocess.Popen[bytes], within: float) -> bool:
    deadline = time.monotonic() + within
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@contextlib.asynccontextmanager
async def run_sidecar(
    engine_url: str,
    adapter_dir: Path,
    log: Path,
    env: dict[str, str] | None = None,
    **source_policy: str,
) -> AsyncIterator[Sidecar]:
    """Run the sidecar process; waiting never blocks the loop (the stand-in engine runs on it).

    Local sources are allowed under the adapter directory's parent (the test's tmp_path);
    `source_policy` sets more `SIDECAR_SOURCE_*` variables (e.g. `hosts="127.0.0.1"`)."""
    port = free_port()
    policy = {"SIDECAR_SOURCE_ROOTS": str(adapter_dir.parent)} | {
        f"SIDECAR_SOURCE_{key.upper()}": value for key, value in source_policy.items()
    }
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                sys.executable, "-m", "data_plane.inference.sidecar_runtime",
                "--host", "127.0.0.1", "--port", str(port), "--engine-url", engine_url,
                "--adapter-dir", str(adapter_dir), "--poll-interval-seconds", "0.2",
                "--max-adapter-bytes", "100000",
            ],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "SIDECAR_RETRY_BASE_SECONDS": "0.2", **policy, **(env or {})},
            start_new_session=True,
        )  # fmt: skip
    sidecar = Sidecar(process, f"http://127.0.0.1:{port}", adapter_dir, log)
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                assert process.poll() is None, f"sidecar exited; see {log}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{sidecar.url}/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"sidecar not healthy; see {log}"
                await asyncio.sleep(0.1)
        yield sidecar
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            if not await _exited(process, 15):
                os.killpg(process.pid, signal.SIGKILL)
                await _exited(process, 5)
