"""One inference pod for the e2e module: engine_api (real vLLM CPU, tiny model) + sidecar.

Started once for the module (vLLM takes ~45-65 s to start on 2 cores) and stopped when the
module ends, so it never runs beside another tier's vLLM (one vLLM at a time on 2 cores).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.ports import free_port
from tests.support.tiny_model import TinyModel, build_tiny_model_with_adapters
from tests.support.vllm_server import vllm_installed

STARTUP_TIMEOUT_S = 400.0
GATEWAY_PRESENT = importlib.util.find_spec("data_plane.gateway") is not None
MAX_ADAPTER_BYTES = 1_000_000


@dataclass
class Pod:
    model: TinyModel
    engine: subprocess.Popen[bytes]
    engine_url: str
    engine_metrics_url: str
    sidecar: subprocess.Popen[bytes]
    sidecar_url: str
    adapter_dir: Path
    logs: Path
    api_url: str
    """Where clients send requests: the gateway when the repository has one, else the engine."""

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.logs / name
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM the process's group, then kill whatever of its tree is left."""
    tree: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = psutil.Process(process.pid).children(recursive=True)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready at {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    if not vllm_installed():
        pytest.skip("vLLM is not installed; run `bash scripts/install-python-deps.sh`")
    root = tmp_path_factory.mktemp("pod")
    model = build_tiny_model_with_adapters(root / "tiny", ["alpha", "beta"])
    logs = root / "logs"
    logs.mkdir()
    adapter_dir = root / "adapter-dir"
    engine_port, metrics_port, sidecar_port = free_port(), free_port(), free_port()
    document = {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "tiny"},
        "spec": {
            "source": str(model.path),
            "maxModelLen": 512,
            "lora": {"maxLoras": 2, "maxLoraRank": 8},
            "engineArgs": ["--dtype", "float32", "--seed", "0"],
        },
    }
    env = {
        **os.environ,
        "MODEL_REPOSITORY": str(root / "models"),
        "HOIST_HOME": str(root / "home"),
        # The tests' adapters live in temporary folders and on a loopback file server.
        "SIDECAR_SOURCE_SCHEMES": "s3 https http file",
        "SIDECAR_SOURCE_HOSTS": "127.0.0.1",
        "SIDECAR_SOURCE_ROOTS": tempfile.gettempdir(),
        "ENGINE_RESTART_BASE_SECONDS": "1",
        "ENGINE_HEALTH_INTERVAL_SECONDS": "0.5",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with (logs / "engine.log").open("wb") as log:
        engine = subprocess.Popen(
            [
                sys.executable, "-m", "data_plane.inference.engine_api",
                "--model-json", json.dumps(document),
                "--host", "127.0.0.1", "--port", str(engine_port),
                "--metrics-port", str(metrics_port),
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    sidecar = gateway = None
    try:
        engine_url = f"http://127.0.0.1:{engine_port}"
        wait_for(f"{engine_url}/health", engine, STARTUP_TIMEOUT_S, "engine_api")
        with (logs / "sidecar.log").open("wb") as log:
            sidecar = subprocess.Popen(
                [
                    sys.executable, "-m", "data_plane.inference.sidecar_runtime",
                    "--host", "127.0.0.1", "--port", str(sidecar_port),
                    "--engine-url", engine_url, "--adapter-dir", str(adapter_dir),
                    "--max-adapter-bytes", str(MAX_ADAPTER_BYTES),
                    "--poll-interval-seconds", "0.5",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        sidecar_url = f"http://127.0.0.1:{sidecar_port}"
        wait_for(f"{sidecar_url}/readyz", sidecar, 60, "sidecar")
        api_url = engine_url
        if GATEWAY_PRESENT:
            gateway_port = free_port()
            with (logs / "gateway.log").open("wb") as log:
                gateway = subprocess.Popen(
                    [
                        sys.executable, "-m", "data_plane.gateway",
                        "--host", "127.0.0.1", "--port", str(gateway_port),
                        "--discovery", "static", "--upstream", f"tiny={engine_url}#alpha+beta",
                    ],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    start_new_session=True,
                )  # fmt: skip
            api_url = f"http://127.0.0.1:{gateway_port}"
            wait_for(f"{api_url}/readyz", gateway, 60, "gateway")
        yield Pod(
            model=model,
            engine=engine,
            engine_url=engine_url,
            engine_metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
            sidecar=sidecar,
            sidecar_url=sidecar_url,
            adapter_dir=adapter_dir,
            logs=logs,
            api_url=api_url,
        )
    finally:
        if gateway is not None:
            _stop(gateway)
        if sidecar is not None:
            _stop(sidecar)
        _stop(engine)
