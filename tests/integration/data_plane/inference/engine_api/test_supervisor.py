"""engine_api as a process, supervising a stand-in `vllm` module (real processes, real HTTP).

The stand-in is put first on PYTHONPATH as `vllm.entrypoints.openai.api_server`: it serves
`/health` on `--port`, starts a child in its process group (as vLLM's engine core is), and
misbehaves on request (FAKE_MODE).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.ports import free_port

FAKE_SERVER = """
import argparse, http.server, os, subprocess, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
parser.add_argument("--host")
args, _ = parser.parse_known_args()
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "bad-args":
    sys.exit(2)
if mode == "crash":
    sys.exit(1)
with open(os.environ["FAKE_ARGV_FILE"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
time.sleep(float(os.environ.get("FAKE_LOAD_S", "0")))  # a slow model load: port closed
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((args.host, args.port), Health).serve_forever()
"""


def model_json(source: str, **spec: object) -> str:
    return json.dumps(
        {
            "apiVersion": "serving.hoist.dev/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "m"},
            "spec": {"source": source, **spec},
        }
    )


@pytest.fixture
def fake_vllm(tmp_path: Path) -> Path:
    package = tmp_path / "fake" / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(FAKE_SERVER)
    (tmp_path / "weights").mkdir()
    return tmp_path


@contextlib.contextmanager
def engine_api(
    root: Path,
    *args: str,
    mode: str = "ok",
    document: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    port, metrics_port = free_port(), free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": f"{root / 'fake'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "FAKE_MODE": mode,
        "FAKE_ARGV_FILE": str(root / "argv"),
        "MODEL_REPOSITORY": str(root),
        "ENGINE_RESTART_BASE_SECONDS": "0.2",
        "ENGINE_HEALTH_INTERVAL_SECONDS": "0.2",
        "ENGINE_STOP_GRACE_SECONDS": "5",
        **(env or {}),
    }
    with (root / "engine.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "data_plane.inference.engine_api",
                "--model-json", document or model_json("weights"),
                "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
                *args,
            ],
            stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True,
        )  # fmt: skip
    try:
        yield process, port, metrics_port
    finally:
        if process.poll() is None:
            # The engine runs in its own process group: kill the whole tree, not only ours.
            tree = engine_tree(process)
            for member in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            psutil.wait_procs(tree, timeout=10)


def wait_healthy(port: int, process: subprocess.Popen[bytes], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, f"engine_api exited with {process.returncode}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("engine not healthy in time")


def wait_metric(metrics_port: int, line: str, within: float = 30) -> str:
    deadline = time.monotonic() + within
    while True:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        if line in text:
            return text
        assert time.monotonic() < deadline, f"{line!r} not in\n{text}"
        time.sleep(0.1)


def engine_tree(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


def test_starts_vllm_with_the_spec_and_stops_its_whole_group(fake_vllm: Path) -> None:
    with engine_api(fake_vllm) as (process, port, metrics_port):
        wait_healthy(port, process)
        argv = (fake_vllm / "argv").read_text()
        assert f"--model {fake_vllm / 'weights'} --served-model-name m" in argv
        assert "--enable-lora" in argv
        tree = engine_tree(process)
        assert len(tree) == 2  # the server and its child
        metrics = wait_metric(metrics_port, "engine_ready 1.0")
        assert "model_load_time_seconds 0.0" not in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert alive == []


def _ended(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_engine_is_restarted(fake_vllm: Path) -> None:
    with engine_api(fake_vllm) as (process, port, metrics_port):
        wait_healthy(port, process)
        (server,) = [p for p in engine_tree(process) if "api_server" in " ".join(p.cmdline())]
        os.killpg(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len((fake_vllm / "argv").read_text().splitlines()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        wait_healthy(port, process)
        wait_metric(metrics_port, "engine_process_restarts_total 1.0")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


def test_a_frozen_engine_is_killed_and_restarted_but_a_slow_load_is_not(
    fake_vllm: Path,
) -> None:
    # The load takes several times the hang bound: still starting, so not restarted.
    env = {
        "FAKE_LOAD_S": "3",
        "ENGINE_UNRESPONSIVE_AFTER_SECONDS": "0.8",
        "ENGINE_HEALTH_TIMEOUT_SECONDS": "0.3",
    }
    with engine_api(fake_vllm, env=env) as (process, port, metrics_port):
        wait_healthy(port, process)
        wait_metric(metrics_port, "engine_ready 1.0")  # the supervisor saw it healthy
        assert len((fake_vllm / "argv").read_text().splitlines()) == 1
        (server,) = [p for p in engine_tree(process) if "api_server" in " ".join(p.cmdline())]
        server.suspend()  # SIGSTOP: alive, listening, answering nothing
        wait_metric(metrics_port, 'engine_watchdog_restarts_total{reason="unresponsive"} 1.0')
        # SIGKILL was sent before the count: the kernel ends the process soon after
        deadline = time.monotonic() + 10
        while not _ended(server):
            assert time.monotonic() < deadline, "the frozen engine outlived its SIGKILL"
            time.sleep(0.05)
        wait_healthy(port, process)
        assert len((fake_vllm / "argv").read_text().splitlines()) == 2
        metrics = wait_metric(metrics_port, "engine_process_restarts_total 1.0")
        assert 'engine_watchdog_restarts_total{reason="crashed"}' not in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        pytest.param("bad-args", "refused its command line", id="exit-2-at-once"),
        pytest.param("crash", "failed to become ready 3 times", id="crash-loop"),
    ],
)
def test_gives_up_on_an_engine_that_never_starts(fake_vllm: Path, mode: str, reason: str) -> None:
    with engine_api(fake_vllm, mode=mode) as (process, _, _):
        assert process.wait(timeout=60) == 1
    assert reason in (fake_vllm / "engine.log").read_text()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param("{not json", "not a valid Model document", id="bad-json"),
        pytest.param(model_json("weights", replicas=-1), "not a valid Model", id="bad-spec"),
        pytest.param(model_json("weights", engine="sim"), "engine_api runs vllm", id="sim"),
        pytest.param(
            model_json("weights", engineArgs=["--port", "1"]), "--port is not allowed", id="port"
        ),
        pytest.param(model_json("missing"), "prepare it first", id="missing-model"),
        pytest.param(
            model_json("weights", kvCache={"disk": {"path": "/kv", "sizeGib": 1}}),
            "needs LMCache",
            id="lmcache-missing",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    fake_vllm: Path, document: str, message: str
) -> None:
    with engine_api(fake_vllm, document=document) as (process, _, _):
        assert process.wait(timeout=60) == 2
    assert message in (fake_vllm / "engine.log").read_text()
    assert not (fake_vllm / "argv").exists()  # vLLM was never started


def test_a_model_in_a_remote_repository_is_downloaded_once(fake_vllm: Path) -> None:
    served = fake_vllm / "served"
    served.mkdir()
    weights = fake_vllm / "weights"
    (weights / "config.json").write_text("{}")
    with tarfile.open(served / "remote-model", "w:gz") as tar:
        tar.add(weights, arcname="remote-model")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=served, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_up = time.monotonic() + 20
        while not _http_ok(f"http://127.0.0.1:{port}/"):
            assert time.monotonic() < wait_up
            time.sleep(0.1)
        env = {
            "MODEL_REPOSITORY": f"http://127.0.0.1:{port}",
            "HOIST_HOME": str(fake_vllm / "home"),
        }
        for _ in range(2):  # the second start finds it in the cache
            with engine_api(fake_vllm, document=model_json("remote-model"), env=env) as (
                process, engine_port, _,
            ):  # fmt: skip
                wait_healthy(engine_port, process)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=20) == 0
    finally:
        server.terminate()
        server.wait(timeout=10)
    log = (fake_vllm / "engine.log").read_text()
    assert log.count("downloading http://127.0.0.1") == 1
    cached = next((fake_vllm / "home" / "cache" / "models").iterdir()) / "remote-model"
    assert (cached / "config.json").is_file()
    starts = (fake_vllm / "argv").read_text().splitlines()
    assert len(starts) == 2
    assert all(f"--model {cached} " in line for line in starts)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_busy_metrics_port_is_a_clear_error(fake_vllm: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with engine_api(fake_vllm, "--metrics-port", str(port)) as (process, _, _):
            assert process.wait(timeout=60) == 1
    log = (fake_vllm / "engine.log").read_text()
    assert "engine_api:" in log
    assert "Traceback" not in log
    assert not (fake_vllm / "argv").exists()
