"""`hoist up` as a user runs it: a real supervisor process and real child processes.

The children are stand-ins (tests/support/standin_process.py) so that these tests exercise
the supervisor alone: start order, health checks, restarts, signals, and no orphans.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support.ports import free_port_block

STANDIN = Path(__file__).parents[3] / "support" / "standin_process.py"
HOIST = [sys.executable, "-m", "control_plane.cli"]

TWO_REPLICAS = textwrap.dedent(
    """
    apiVersion: serving.hoist.dev/v1alpha1
    kind: Model
    metadata:
      name: tiny
    spec:
      source: tiny
      engine: sim
      replicas: 2
    ---
    apiVersion: serving.hoist.dev/v1alpha1
    kind: LoraAdapter
    metadata:
      name: sql
    spec:
      baseModel: tiny
      source: adapters/sql
    """
)


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    config: Path
    gateway_port: int

    output: Path

    def up(self, *extra: str) -> subprocess.Popen[bytes]:
        with self.output.open("wb") as out:
            return subprocess.Popen(
                [*HOIST, "up", "-f", str(self.config), *extra],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def finish(self, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> str:
        """Wait for `hoist up` to exit; its output."""
        proc.wait(timeout=timeout_s)
        return self.output.read_text()

    def status(self) -> dict[str, object] | None:
        done = subprocess.run(
            [*HOIST, "status", "--json"], env=self.env, capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            return None
        state: dict[str, object] = json.loads(done.stdout)
        return state


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    config = tmp_path / "config"
    config.mkdir()
    (config / "fleet.yaml").write_text(TWO_REPLICAS)
    base = free_port_block(12)
    env = {
        **os.environ,
        "HOIST_HOME": str(tmp_path / "home"),
        "HOIST_PYTHON": str(STANDIN),
        "HOIST_GATEWAY_PORT": str(base),
        "HOIST_ADMIN_PORT": str(base + 1),
        "HOIST_ENGINE_BASE_PORT": str(base + 2),
        "HOIST_SIDECAR_BASE_PORT": str(base + 6),
        "HOIST_STOP_GRACE_S": "5",
        "STANDIN_GRANDCHILD": "1",
        "COLUMNS": "200",
    }
    return Stack(
        home=tmp_path / "home", env=env, config=config, gateway_port=base,
        output=tmp_path / "hoist-up.log",
    )  # fmt: skip


def wait_for(predicate: object, what: str, timeout_s: float = 60) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def all_ready(stack: Stack) -> bool:
    state = stack.status()
    if state is None:
        return False
    replicas = [r for m in state["models"] for r in m["replicas"]]  # type: ignore[attr-defined]
    gateway = state.get("gateway") or {}
    return len(replicas) == 2 and all(r["ready"] for r in replicas) and gateway["phase"] == "Ready"  # type: ignore[index]


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def assert_all_gone(pids: list[int], timeout_s: float = 10) -> None:
    """Every pid has exited (a zombie awaiting its reaper counts as exited)."""

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.1)
    survivors = [p for p in pids if not gone(p)]
    assert survivors == [], f"processes left behind: {survivors}"


@pytest.fixture
def running(stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    proc = stack.up()
    try:
        wait_for(lambda: all_ready(stack), "every replica and the gateway to be ready")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # the supervisor stops its children; SIGKILL would orphan them
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_runs_every_process_and_a_signal_leaves_none_behind(
    stack: Stack, running: subprocess.Popen[bytes], sig: signal.Signals
) -> None:
    tree = descendants(running.pid)
    # 2 engines + 2 sidecars + 1 gateway, each with one grandchild.
    children = [p for p in tree if p.ppid() == running.pid]
    assert len(children) == 5
    assert len(tree) == 10

    state = stack.status()
    assert state is not None
    [model] = state["models"]  # type: ignore[misc]
    assert [r["name"] for r in model["replicas"]] == ["tiny-0", "tiny-1"]
    assert {a["metadata"]["name"] for a in state["adapters"]} == {"sql"}  # type: ignore[attr-defined]

    running.send_signal(sig)
    output = stack.finish(running)
    assert running.returncode == 0, output
    assert "stopped 5 processes" in output
    assert_all_gone([p.pid for p in tree])
    assert not (stack.home / "run" / "supervisor.json").exists()


def test_status_shows_tables_while_running(stack: Stack, running: subprocess.Popen[bytes]) -> None:
    done = subprocess.run([*HOIST, "status"], env=stack.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for expected in ("tiny-0", "tiny-1", "Ready", "sql", "Gateway"):
        assert expected in done.stdout


def test_status_without_a_running_stack_says_so(stack: Stack) -> None:
    done = subprocess.run([*HOIST, "status"], env=stack.env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "no `hoist up` is running" in done.stderr


def test_a_crashed_engine_is_restarted(stack: Stack, running: subprocess.Popen[bytes]) -> None:
    state = stack.status()
    assert state is not None
    replica = state["models"][0]["replicas"][0]  # type: ignore[index]
    old_pid = replica["enginePid"]
    os.killpg(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        now = stack.status()
        if now is None:
            return False
        r = now["models"][0]["replicas"][0]  # type: ignore[index]
        return bool(r["restarts"] == 1 and r["ready"] and r["enginePid"] != old_pid)

    wait_for(restarted, "the engine to be restarted and ready again")


def test_ctrl_c_while_engines_load_stops_everything(stack: Stack) -> None:
    stack.env["STANDIN_SLOW_MODULES"] = "data_plane.inference.simulator"
    proc = stack.up()
    grandchildren = stack.home / "standin-grandchildren"
    wait_for(
        lambda: grandchildren.exists() and len(list(grandchildren.iterdir())) == 2,
        "engines to start loading",
    )
    tree = descendants(proc.pid)
    assert len(tree) == 4  # two loading engines and their workers; nothing else yet
    proc.send_signal(signal.SIGINT)
    output = stack.finish(proc)
    assert proc.returncode == 0, output
    assert_all_gone([p.pid for p in tree])


def test_a_busy_port_starts_nothing(stack: Stack) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.gateway_port))
        squatter.listen()
        proc = stack.up()
        output = stack.finish(proc)
    assert proc.returncode == 2
    assert f"port {stack.gateway_port} (gateway) is already in use" in output
    assert "Nothing was started." in output
    assert not (stack.home / "logs").exists()


def test_a_child_that_cannot_start_stops_the_whole_stack(stack: Stack) -> None:
    stack.env["STANDIN_EXIT_MODULES"] = "data_plane.inference.sidecar_runtime"
    proc = stack.up()
    output = stack.finish(proc, timeout_s=120)
    assert proc.returncode == 1
    assert "sidecar exited with code 3" in output
    assert "refusing to start, as asked" in output  # the end of its log is shown
    grandchildren = stack.home / "standin-grandchildren"
    pids = [int(f.read_text()) for f in grandchildren.iterdir()]
    assert pids, "the engines should have started their workers"
    assert_all_gone(pids)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            "kind: Model\napiVersion: serving.hoist.dev/v1alpha1\nmetadata: {name: m}\n"
            "spec: {source: s, replicas: two}\n",
            'document 1 (Model "m"): spec.replicas: Input should be a valid integer',
            id="wrong-type",
        ),
        pytest.param(
            "kind: Model\napiVersion: serving.hoist.dev/v1alpha1\nmetadata: {name: m}\n"
            "spec: {source: s, gpuCount: 1}\n",
            'document 1 (Model "m"): spec.gpuCount: unknown field',
            id="unknown-field",
        ),
        pytest.param(
            "kind: LoraAdapter\napiVersion: serving.hoist.dev/v1alpha1\nmetadata: {name: a}\n"
            "spec: {baseModel: nowhere, source: /x}\n",
            'document 1 (LoraAdapter "a"): spec.baseModel: no Model named "nowhere"',
            id="unknown-base-model",
        ),
        pytest.param("kind: [unclosed\n", "document 1: malformed YAML", id="malformed-yaml"),
    ],
)
def test_bad_declarations_are_refused_before_anything_starts(
    stack: Stack, document: str, expected: str
) -> None:
    bad = stack.config / "bad.yaml"
    bad.write_text(document)
    proc = stack.up()
    output = stack.finish(proc)
    assert proc.returncode == 2
    assert f"{bad}: {expected}" in " ".join(output.split())
    assert not (stack.home / "logs").exists()
