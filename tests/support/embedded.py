"""Run the embedded default (`hoist up`) with its real parts for a test, and always stop it.

    with running_embedded(tmp_path, [model_doc("tiny", replicas=2)]) as stack:
        client = openai.OpenAI(base_url=stack.gateway_url + "/v1", api_key="x")

Ports come from a random free block; HOIST_HOME is inside the test's folder; the
supervisor is stopped with SIGTERM (it stops its children first) and killed only if it
does not exit in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.ports import free_port_block

API_VERSION = "serving.hoist.dev/v1alpha1"


def model_doc(name: str, *, replicas: int = 1, engine: str = "sim", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {"source": name, "engine": engine, "replicas": replicas, **spec},
    }


def adapter_doc(name: str, base_model: str, source: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LoraAdapter",
        "metadata": {"name": name},
        "spec": {"baseModel": base_model, "source": source, **spec},
    }


def sim_adapter_dir(root: Path, name: str, *, rank: int = 8) -> Path:
    """An adapter folder the simulator accepts (it checks the config as vLLM does, not weights)."""
    folder = root / "adapters" / name
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "base_model_name_or_path": "sim",
        "target_modules": ["q_proj", "v_proj"],
        "task_type": "CAUSAL_LM",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def get_json(url: str, timeout_s: float = 5, *, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.load(response)


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class EmbeddedStack:
    process: subprocess.Popen[bytes]
    admin_url: str
    gateway_url: str
    home: Path
    log: Path
    env: dict[str, str]

    @property
    def admin_token_file(self) -> Path:
        return self.home / "run" / "admin-token"

    @property
    def admin_token(self) -> str:
        """The admin API's credential, as `hoist up` wrote it for this user."""
        return self.admin_token_file.read_text().strip()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = get_json(f"{self.admin_url}/v1/state", token=self.admin_token)
        return state

    def adapter_phase(self, name: str) -> str | None:
        for adapter in self.state()["adapters"]:
            if adapter["metadata"]["name"] == name:
                phase: str | None = adapter.get("status", {}).get("phase")
                return phase
        return None

    def replicas(self) -> list[dict[str, Any]]:
        return [r for m in self.state()["models"] for r in m["replicas"]]


@contextlib.contextmanager
def running_embedded(
    tmp_path: Path,
    documents: list[dict[str, Any]],
    *,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 120,
) -> Iterator[EmbeddedStack]:
    """`hoist up -f` on `documents`, ready (every replica and the gateway) when yielded."""
    config = tmp_path / "declarations.yaml"
    config.write_text(yaml.safe_dump_all(documents))
    base = free_port_block(60)
    full_env = {
        **os.environ,
        "HOIST_HOME": str(tmp_path / "home"),
        "HOIST_GATEWAY_PORT": str(base),
        "HOIST_ADMIN_PORT": str(base + 1),
        "HOIST_ENGINE_BASE_PORT": str(base + 2),
        "HOIST_SIDECAR_BASE_PORT": str(base + 21),
        "HOIST_ENGINE_METRICS_BASE_PORT": str(base + 40),
        "HOIST_STOP_GRACE_S": "5",
        "HOIST_ADAPTER_SOURCE_ROOTS": str(tmp_path),  # the tests' adapters live there
        # No load balancer in front: the gateway need not keep serving after SIGTERM.
        "HOIST_GATEWAY_DRAIN_DELAY_S": "0",
        **(env or {}),
    }
    log = tmp_path / "hoist-up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "up", "-f", str(config)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = EmbeddedStack(
        process=process,
        admin_url=f"http://127.0.0.1:{base + 1}",
        gateway_url=f"http://127.0.0.1:{base}",
        home=tmp_path / "home",
        log=log,
        env=full_env,
    )
    try:

        def ready() -> bool:
            assert process.poll() is None, f"hoist up exited:\n{log.read_text()[-3000:]}"
            if not stack.admin_token_file.exists():
                return False  # the supervisor writes it before it serves
            try:
                state = stack.state()
            except (urllib.error.URLError, ConnectionError):
                return False
            replicas = [r for m in state["models"] for r in m["replicas"]]
            return state["gateway"]["phase"] == "Ready" and all(r["ready"] for r in replicas)

        wait_until(ready, "the embedded default to be ready", ready_timeout_s)
        yield stack
    finally:
        if process.poll() is None:
            process.terminate()  # the supervisor stops its children first
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
