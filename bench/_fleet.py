"""The simulated fleet of bench/faults.py and bench/soak.py: three simulator processes
(`constant-20tps` at 4x: 80 tokens/s per stream) and gateway processes in front of them
(static discovery, `SO_REUSEPORT`, 2 s drain delay), all on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _procs import ROOT, wait_http

sys.path.insert(0, str(ROOT))
from tests.support.simulator import SimProcess, start_sim_process

SIM_ARGS = ["--profile", "constant-20tps", "--time-scale", "4", "--served-model-name", "sim"]
GATEWAY_ENV = {
    "HOIST_GATEWAY_REUSE_PORT": "true",
    "HOIST_GATEWAY_DRAIN_DELAY_S": "2",
    "LOG_LEVEL": "warning",
}


@contextmanager
def fleet(tmp: Path, replicas: int = 3) -> Iterator[list[SimProcess]]:
    """`replicas` engines; the list is the caller's to update when it restarts one (every
    engine in it at the end is continued if stopped, then stopped)."""
    with ExitStack() as stack:
        sims: list[SimProcess] = []
        stack.callback(lambda: [stop_sim(s) for s in sims])
        for i in range(replicas):
            sims.append(start_sim_process(SIM_ARGS, log_path=tmp / f"sim-{i}.log"))
        yield sims


def stop_sim(sim: SimProcess) -> None:
    if sim.process.poll() is None:
        sim.process.send_signal(signal.SIGCONT)
    sim.stop()


def restart_sim(sim: SimProcess, log_path: Path) -> SimProcess:
    """A new engine on the port of `sim`, which has exited (e.g. SIGKILLed)."""
    sim.process.wait(10)
    port = int(sim.urls[0].rsplit(":", 1)[1])
    return start_sim_process(SIM_ARGS, log_path=log_path, port=port)


def start_gateway(port: int, sims: list[SimProcess]) -> subprocess.Popen[bytes]:
    upstream = "sim=" + ",".join(s.urls[0] for s in sims)
    argv = [sys.executable, "-m", "data_plane.gateway", "--port", str(port),
            "--discovery", "static", "--upstream", upstream]  # fmt: skip
    return subprocess.Popen(argv, cwd=ROOT, env=os.environ | GATEWAY_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def stop_gateway(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> int | None:
    """SIGTERM (the gateway drains), wait, SIGKILL if it does not exit; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@contextmanager
def gateway(port: int, sims: list[SimProcess]) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_gateway(port, sims)
    try:
        yield proc
    finally:
        stop_gateway(proc)


def ready(url: str) -> None:
    wait_http(url + "/readyz")
