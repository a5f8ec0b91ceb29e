"""Several worker processes on one port: requests spread, metrics summed, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil

from data_plane.gateway import metrics
from data_plane.gateway.worker_count import available_cores
from tests.support.fake_vllm import FakeVllm

ROOT = Path(__file__).resolve().parents[4]


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
            # The other worker's series lag by at most its metrics flush interval.
            async with asyncio.timeout(10):
                while (total := await _completions_total(http)) < 20.0:  # noqa: ASYNC110 - another process
                    await asyncio.sleep(metrics.FLUSH_INTERVAL_S)
        assert total == 20.0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert engine.requests == 20


def _listeners(pid: int, port: int) -> int:
    """Listening sockets on `port` held by `pid` and its children (one per serving worker)."""
    root = psutil.Process(pid)
    found = 0
    for member in [root, *root.children(recursive=True)]:
        for conn in member.net_connections(kind="tcp"):
            found += conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    return found


async def _serve_by_default(
    engine: FakeVllm, env: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """Start a gateway with no worker setting; its listening workers once ready, and its log."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "HOIST_GATEWAY_WORKERS"} | env
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_plane.gateway", "--port", str(port),
        "--discovery", "static", "--upstream", f"tiny={engine.url}",
        cwd=ROOT, env=env | {"LOG_LEVEL": "info"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(30):
                # ready, and every worker listening (each starts on its own)
                expected = 1 if "HOIST_GATEWAY_TENANTS_FILES" in env else available_cores()
                while True:
                    all_up = _listeners(proc.pid, port) >= expected
                    if all_up and await _status(http, "/readyz") == 200:
                        break
                    await asyncio.sleep(0.1)
            body = {"model": "tiny", "prompt": "x", "max_tokens": 1}
            url = f"http://127.0.0.1:{port}/v1/completions"
            for _ in range(8):
                async with (
                    aiohttp.ClientSession() as once,
                    once.post(url, json=body, headers=headers) as resp,
                ):
                    assert resp.status == 200
            listening = _listeners(proc.pid, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    return listening, err.decode()


async def _status(http: aiohttp.ClientSession, path: str) -> int:
    try:
        async with http.get(path) as resp:
            return resp.status
    except aiohttp.ClientConnectionError:
        return 0


async def test_by_default_one_worker_per_core_each_on_its_own_socket(engine: FakeVllm) -> None:
    listening, log = await _serve_by_default(engine, {})
    assert listening == available_cores()
    assert f"{available_cores()} worker process(es), one per available core" in log


async def test_declared_quotas_without_redis_start_one_worker(
    engine: FakeVllm, tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        "apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team-a}\n"
        "spec: {quotas: {requestsPerMinute: 600}}\n"
    )
    keys = tmp_path / "keys"
    keys.write_text("team-a: sk-team-a-0123456789abcdef\n")
    env = {"HOIST_GATEWAY_TENANTS_FILES": str(tenants), "HOIST_GATEWAY_TENANT_KEYS_FILE": str(keys)}
    listening, log = await _serve_by_default(
        engine, env, {"Authorization": "Bearer sk-team-a-0123456789abcdef"}
    )
    assert listening == 1
    if available_cores() > 1:
        assert "tenants declare quotas and no tenant_redis_url" in log


async def _completions_total(http: aiohttp.ClientSession) -> float:
    async with http.get("/metrics") as resp:
        text = await resp.text()
    total = re.search(
        r'inference_requests_total\{adapter="",endpoint="completions",model="tiny",status="2xx"\} (\S+)',
        text,
    )
    return 0.0 if total is None else float(total.group(1))
