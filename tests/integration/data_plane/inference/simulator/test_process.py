"""The simulator as the embedded default starts it: a real process, several engines."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port_block
from tests.support.simulator import running_sim_process


def test_replicas_serve_on_consecutive_ports_and_stop_on_sigterm(tmp_path: Path) -> None:
    args = ["--served-model-name", "fleet", "--profile", "tiny", "--max-loras", "2", "--seed", "1"]
    with running_sim_process(args, log_path=tmp_path / "sim.log", replicas=3) as sim:
        ports = [int(url.rsplit(":", 1)[1]) for url in sim.urls]
        assert ports == [ports[0], ports[0] + 1, ports[0] + 2]
        for url in sim.urls:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as response:
                assert b'"id":"fleet"' in response.read()
        code = sim.stop()
    assert code == 0
    assert "simulating 3 engine(s) of fleet" in (tmp_path / "sim.log").read_text()


def test_bad_flags_exit_2_with_a_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "data_plane.inference.simulator", "--time-scale", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "time_scale" in done.stderr


def test_a_taken_port_exits_1_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "data_plane.inference.simulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr


def test_hoist_sim_runs_the_simulator(tmp_path: Path) -> None:
    hoist = str(Path(sys.executable).with_name("hoist"))  # the venv's console script
    port = free_port_block(1)
    log = tmp_path / "hoist-sim.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [hoist, "sim", "--host", "127.0.0.1", "--port", str(port), "--profile", "tiny"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(log.read_text())
                time.sleep(0.1)
        else:
            pytest.fail(f"not healthy: {log.read_text()}")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_an_engine_that_cannot_hold_its_context_exits_2() -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "data_plane.inference.simulator", "--port", "0",
            "--profile", "tiny", "--max-model-len", "4096",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "fewer than max_model_len 4096" in done.stderr
