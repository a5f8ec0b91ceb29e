"""A rolling restart of the gateway under load: a second gateway starts on the same port
(SO_REUSEPORT), the first gets SIGTERM and drains; no request fails."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from tests.support.fault_load import OK, SteadyLoad
from tests.support.ports import free_port
from tests.support.simulator import SimProcess
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DRAIN_DELAY_S = 1.5


@contextmanager
def gateway_process(port: int, upstream: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = os.environ | {
        "LOG_LEVEL": "info",
        "HOIST_GATEWAY_REUSE_PORT": "true",
        "HOIST_GATEWAY_DRAIN_DELAY_S": str(DRAIN_DELAY_S),
        "HOIST_GATEWAY_DRAIN_GRACE_S": "20",
    }
    argv = [sys.executable, "-m", "data_plane.gateway", "--port", str(port),
            "--discovery", "static", "--upstream", upstream]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def started(log: Path) -> None:
    await wait_until(lambda: "Application startup complete" in log.read_text(), timeout_s=30)


async def served_requests(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    counts = re.findall(r'inference_requests_total\{[^}]*status="2xx"\} (\S+)', text)
    return sum(float(c) for c in counts)


async def test_a_rolling_restart_under_load_fails_no_request(
    sim_processes: list[SimProcess], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    upstream = f"sim={','.join(s.urls[0] for s in sim_processes)}"
    old_log, new_log = tmp_path / "old.log", tmp_path / "new.log"
    with gateway_process(port, upstream, old_log) as old:
        await started(old_log)
        async with SteadyLoad(url, clients=20) as load:
            await wait_until(lambda: len(load.results) >= 100, timeout_s=30)
            with gateway_process(port, upstream, new_log) as new:
                await started(new_log)
                before = len(load.results)
                old.send_signal(signal.SIGTERM)
                await wait_until(lambda: old.poll() is not None, timeout_s=40)
                await wait_until(lambda: len(load.results) >= before + 200, timeout_s=30)
                await load.stop()
                by_new = await served_requests(url)  # only the new one listens now
                assert new.poll() is None
                new.send_signal(signal.SIGTERM)
                await asyncio.to_thread(new.wait, 40)
        results = load.results
    assert old.returncode == 0, old_log.read_text()[-2000:]
    assert new.returncode == 0, new_log.read_text()[-2000:]
    assert "draining" in old_log.read_text()
    assert len(results) > before + 200
    failed = [o for o in results if o.result != OK]
    assert not failed, failed[:5]
    assert by_new > 0
