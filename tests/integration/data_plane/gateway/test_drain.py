"""SIGTERM drains the gateway: /readyz fails first, it still serves (closing connections)
for the drain delay, streams in flight finish, then it exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.ports import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("tiny", token_delay_s=0.05)
    await e.start()
    yield e
    await e.stop()


async def serving(url: str) -> None:
    async with asyncio.timeout(30), aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_sigterm_fails_readyz_then_finishes_streams_and_exits(
    engine: FakeVllm, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    env = os.environ | {"HOIST_GATEWAY_DRAIN_DELAY_S": "1", "LOG_LEVEL": "info"}
    argv = [sys.executable, "-m", "data_plane.gateway", "--port", str(port),
            "--discovery", "static", "--upstream", f"tiny={engine.url}"]  # fmt: skip
    proc = start(argv, env, log)
    try:
        await serving(url)
        body = orjson.dumps({"model": "tiny", "prompt": "x", "max_tokens": 40, "stream": True})
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/readyz") as resp:
                assert resp.status == 200
            stream = await http.post(url + "/v1/completions", data=body)
            assert stream.status == 200
            await stream.content.readany()  # it has started
            proc.send_signal(signal.SIGTERM)
            await wait_until(lambda: "draining" in log.read_text())
            async with http.get(url + "/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "draining"
            plain = {"model": "tiny", "prompt": "x", "max_tokens": 2}
            async with http.post(url + "/v1/completions", json=plain) as resp:
                assert resp.status == 200  # still served during the delay...
                assert resp.headers["connection"] == "close"  # ...on a closing connection
                await resp.read()
            rest = await stream.read()
            stream.close()
        assert rest.rstrip().endswith(b"data: [DONE]")
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_a_stream_longer_than_the_grace_period_ends_with_an_error_event(
    engine: FakeVllm, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    env = os.environ | {
        "HOIST_GATEWAY_DRAIN_DELAY_S": "0",
        "HOIST_GATEWAY_DRAIN_GRACE_S": "1",
        "LOG_LEVEL": "info",
    }
    argv = [sys.executable, "-m", "data_plane.gateway", "--port", str(port),
            "--discovery", "static", "--upstream", f"tiny={engine.url}"]  # fmt: skip
    proc = start(argv, env, log)
    try:
        await serving(url)
        body = orjson.dumps({"model": "tiny", "prompt": "x", "max_tokens": 60, "stream": True})
        async with aiohttp.ClientSession() as http:
            stream = await http.post(url + "/v1/completions", data=body)  # 3 s of tokens
            await stream.content.readany()
            proc.send_signal(signal.SIGTERM)
            rest = await stream.read()
            stream.close()
        last = rest.rstrip().rsplit(b"\n\n", 1)[-1]
        assert last.startswith(b"data: {")
        assert orjson.loads(last[6:])["error"]["message"].startswith("The gateway is shutting")
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
