"""`hoist up` under faults: a frozen engine is restarted, a crashed sidecar leaves the engine
alone and re-reconciles its adapters (real supervisor, simulator engines, real sidecars).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from tests.support.embedded import (
    EmbeddedStack,
    adapter_doc,
    get_json,
    model_doc,
    running_embedded,
    sim_adapter_dir,
    wait_until,
)

HANG_BOUND_S = float(os.environ.get("FAULTS_HANG_BOUND_S", "2"))
"""`HOIST_ENGINE_UNRESPONSIVE_AFTER_S` in these tests (the default is 10 s)."""
WATCHDOG = {
    "HOIST_ENGINE_UNRESPONSIVE_AFTER_S": str(HANG_BOUND_S),
    "HOIST_LIVENESS_INTERVAL_S": "0.3",
    "HOIST_LIVENESS_PROBE_TIMEOUT_S": "0.5",
}


def _replica(stack: EmbeddedStack, name: str) -> dict[str, Any]:
    (replica,) = [r for r in stack.replicas() if r["name"] == name]
    return replica


def _hoist_status(stack: EmbeddedStack) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "control_plane.cli", "status"],
        env={**stack.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _metrics(stack: EmbeddedStack) -> str:
    request = urllib.request.Request(
        f"{stack.admin_url}/metrics", headers={"Authorization": f"Bearer {stack.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text: str = response.read().decode()
        return text


def test_a_frozen_engine_is_restarted_and_says_why(tmp_path: Path) -> None:
    documents = [model_doc("tiny", replicas=2)]
    with running_embedded(tmp_path, documents, env=WATCHDOG) as stack:
        frozen = _replica(stack, "tiny-1")
        healthy_before = _replica(stack, "tiny-0")
        stopped_at = time.monotonic()
        os.kill(frozen["enginePid"], signal.SIGSTOP)  # alive and listening, answering nothing

        def restarted() -> bool:
            now = _replica(stack, "tiny-1")
            return now["enginePid"] != frozen["enginePid"] and now["ready"]

        wait_until(restarted, "the frozen engine to be replaced", 60)
        took = time.monotonic() - stopped_at  # reported for docs/, never asserted
        print(f"SIGSTOP to a ready new engine: {took:.1f} s (hang bound {HANG_BOUND_S:g} s)")
        replica = _replica(stack, "tiny-1")
        assert replica["restarts"] == 1
        assert replica["lastRestartReason"] == "unresponsive"
        assert not psutil.pid_exists(frozen["enginePid"]) or (
            psutil.Process(frozen["enginePid"]).status() == psutil.STATUS_ZOMBIE
        )
        # The other replica was left alone.
        other = _replica(stack, "tiny-0")
        assert other["enginePid"] == healthy_before["enginePid"]
        assert other["restarts"] == 0
        assert "1 (unresponsive)" in _hoist_status(stack)
        metrics = _metrics(stack)
        assert 'hoist_supervisor_restarts_total{reason="unresponsive",role="engine"} 1.0' in metrics
        # The new engine serves.
        body = json.dumps({"model": "tiny", "prompt": "hi", "max_tokens": 2}).encode()
        request = urllib.request.Request(
            f"{replica['engineUrl']}/v1/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


def test_a_crashed_sidecar_leaves_the_engine_and_gets_its_adapters_back(tmp_path: Path) -> None:
    source = sim_adapter_dir(tmp_path, "sql")
    documents = [model_doc("tiny", replicas=1), adapter_doc("sql", "tiny", str(source))]
    with running_embedded(tmp_path, documents, env=WATCHDOG) as stack:
        wait_until(lambda: stack.adapter_phase("sql") == "Ready", "sql to be Ready", 60)
        before = _replica(stack, "tiny-0")
        engine_url = before["engineUrl"]

        def engine_adapters() -> set[str]:
            models = get_json(f"{engine_url}/v1/models")["data"]
            return {m["id"] for m in models if m.get("parent")}

        assert engine_adapters() == {"sql"}
        killed_at = time.monotonic()
        os.kill(before["sidecarPid"], signal.SIGKILL)
        # While the sidecar is down the engine loses the adapter (as after an engine-side
        # reset): only a re-reconciliation through the new sidecar can bring it back.
        request = urllib.request.Request(
            f"{engine_url}/v1/unload_lora_adapter",
            data=json.dumps({"lora_name": "sql"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert engine_adapters() == set()

        def back() -> bool:
            now = _replica(stack, "tiny-0")
            return now["sidecarPid"] != before["sidecarPid"] and now["ready"]

        wait_until(back, "the sidecar to be restarted", 60)
        wait_until(lambda: engine_adapters() == {"sql"}, "sql loaded again", 60)
        took = time.monotonic() - killed_at  # reported for docs/, never asserted
        print(f"sidecar SIGKILL to its adapters loaded again: {took:.1f} s")
        after = _replica(stack, "tiny-0")
        assert after["enginePid"] == before["enginePid"]  # the engine was never touched
        assert after["lastRestartReason"] == "crashed"
        wait_until(lambda: _replica(stack, "tiny-0")["adapters"] == ["sql"], "state lists sql", 30)
        assert stack.adapter_phase("sql") == "Ready"
