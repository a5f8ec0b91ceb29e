"""Start simulated vLLM engines for tests: in this event loop, or as a real process.

    async with sim_fleet(profile="tiny", max_loras=2) as fleet:      # in-process
        url = fleet.urls[0]                                          # http://127.0.0.1:PORT

    with running_sim_process(["--profile", "tiny"], replicas=2, log_path=p) as sim:
        sim.urls                                                     # a real child process

Both listen on 127.0.0.1 only, on ports the OS picked as free, and stop what they started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_plane.inference.simulator.runner import Fleet, running_fleet
from data_plane.inference.simulator.settings import SimulatorSettings
from tests.support.ports import free_port_block

_STARTUP_TIMEOUT_S = 30.0


@contextlib.asynccontextmanager
async def sim_fleet(**settings: Any) -> AsyncIterator[Fleet]:
    """Engines served by the running event loop (`replicas` of them, ephemeral ports)."""
    replicas = int(settings.pop("replicas", 1))
    values: dict[str, Any] = {"host": "127.0.0.1", "served_model_name": "sim", **settings}
    if replicas == 1:
        values.setdefault("port", 0)
        async with running_fleet(SimulatorSettings(**values)) as fleet:
            yield fleet
        return
    # Several engines on port 0 each: run them as one fleet per engine.
    async with contextlib.AsyncExitStack() as stack:
        merged = Fleet()
        for _ in range(replicas):
            fleet = await stack.enter_async_context(
                running_fleet(SimulatorSettings(**{**values, "port": 0}))
            )
            merged.engines.extend(fleet.engines)
            merged.urls.extend(fleet.urls)
        yield merged


@dataclass
class SimProcess:
    process: subprocess.Popen[bytes]
    urls: list[str]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return int(self.process.returncode)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start_sim_process(
    args: Sequence[str], *, log_path: Path, replicas: int = 1, port: int | None = None
) -> SimProcess:
    """`python -m data_plane.inference.simulator ARGS` on free loopback ports (or from
    `port` on, to restart an engine where it was), healthy."""
    base = free_port_block(replicas) if port is None else port
    ports = ["--port", str(base)] if replicas == 1 else [
        "--replicas", str(replicas), "--base-port", str(base)
    ]  # fmt: skip
    argv = [sys.executable, "-m", "data_plane.inference.simulator", "--host", "127.0.0.1"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*argv, *ports, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    sim = SimProcess(
        process=process,
        urls=[f"http://127.0.0.1:{base + i}" for i in range(replicas)],
        log_path=log_path,
    )
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    try:
        while not all(_healthy(url) for url in sim.urls):
            if process.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {process.returncode}: {log_path.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"simulator not healthy in time: {log_path.read_text()}")
            time.sleep(0.1)
    except BaseException:
        sim.stop()
        raise
    return sim


@contextlib.contextmanager
def running_sim_process(
    args: Sequence[str], *, log_path: Path, replicas: int = 1
) -> Iterator[SimProcess]:
    sim = start_sim_process(args, log_path=log_path, replicas=replicas)
    try:
        yield sim
    finally:
        sim.stop()
