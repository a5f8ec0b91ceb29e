"""Several worker processes on one port: requests spread, metrics summed, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.fake_vllm import FakeVllm

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("tiny")
    await e.start()
    yield e
    await e.stop()


async def test_two_workers_share_the_port_and_sum_their_metrics(engine: FakeVllm) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_plane.gateway", "--port", str(port), "--workers", "2",
        "--discovery", "static", "--upstream", f"tiny={engine.url}",
        cwd=ROOT, env=os.environ | {"LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(20):
                while True:
                    try:
                        async with http.get("/readyz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.1)
            body = {"model": "tiny", "prompt": "x", "max_tokens": 1}
            for _ in range(20):
                # A new connection each time, so that both workers get some.
                async with (
                    aiohttp.ClientSession() as once,
                    once.post(f"http://127.0.0.1:{port}/v1/completions", json=body) as resp,
                ):
                    assert resp.status == 200
            async with http.get("/metrics") as resp:
                text = await resp.text()
        total = re.search(
            r'inference_requests_total\{adapter="",endpoint="completions",model="tiny",status="2xx"\} (\S+)',
            text,
        )
        assert total is not None
        assert float(total.group(1)) == 20.0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert engine.requests == 20
