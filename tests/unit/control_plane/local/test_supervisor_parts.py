"""The supervisor's parts that need no child process: replica phases and slots in the
process table, the children's environment, and the stop signals."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from control_plane.api import Model
from control_plane.documents import parse_sources
from control_plane.local.child_env import child_env
from control_plane.local.plan import PlanSettings, plan
from control_plane.local.process import Phase
from control_plane.local.process_table import ProcessTable, combined_phase
from control_plane.local.settings import SupervisorSettings
from control_plane.local.signals import stop_on_signals

PLAN = PlanSettings(
    python="/py",
    host="127.0.0.1",
    gateway_port=8080,
    admin_port=8079,
    engine_base_port=8100,
    sidecar_base_port=8200,
    engine_metrics_base_port=8300,
    adapters_dir="/home/a",
    engine_ready_timeout_s=900,
    ready_timeout_s=60,
)


def model(name: str, replicas: int) -> Model:
    return Model.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"source": "s", "engine": "sim", "replicas": replicas, "maxModelLen": 512},
        }
    )


@pytest.mark.parametrize(
    ("engine", "sidecar", "replica"),
    [
        pytest.param(Phase.READY, Phase.READY, Phase.READY, id="both-ready"),
        pytest.param(Phase.READY, Phase.STARTING, Phase.STARTING, id="sidecar-starting"),
        pytest.param(Phase.FAILED, Phase.READY, Phase.FAILED, id="engine-failed"),
        pytest.param(Phase.RESTARTING, Phase.STOPPED, Phase.RESTARTING, id="restarting-wins"),
        pytest.param(Phase.STOPPED, Phase.READY, Phase.STOPPED, id="stopped-engine"),
        pytest.param(Phase.PENDING, Phase.STARTING, Phase.STARTING, id="starting-over-pending"),
    ],
)
def test_a_replica_is_as_bad_as_its_worse_process(
    engine: Phase, sidecar: Phase, replica: Phase
) -> None:
    assert combined_phase([engine, sidecar]) is replica
    assert combined_phase([sidecar, engine]) is replica


def test_the_table_runs_the_active_slots_and_reports_unstarted_ones_pending() -> None:
    models = [model("a", 2), model("b", 1)]
    table = ProcessTable(plan(models, PLAN), models)
    assert [r.name for r in table.running_replicas()] == ["a-0", "a-1", "b-0"]
    table.active["a"].discard(1)  # the autoscaler took a slot away
    assert [r.name for r in table.running_replicas("a")] == ["a-0"]
    table.loaded = {"a-0": ["sql"]}
    state = table.replica_state(table.running_replicas("a")[0])
    assert (state.phase, state.ready, state.adapters) == ("Pending", False, ["sql"])
    assert [(p.name, p.ready) for p in table.replica_views()] == [("a-0", False), ("b-0", False)]
    gateway = table.gateway_state("http://127.0.0.1:8080")
    assert (gateway.phase, gateway.pid) == ("Pending", None)


def test_children_get_the_settings_they_read_and_the_tenant_files(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    text = "\n".join(
        [
            "apiVersion: serving.hoist.dev/v1alpha1",
            "kind: Tenant",
            "metadata: {name: team}",
            "spec: {}",
        ]
    )
    declarations = parse_sources([(str(tenants), text)])
    settings = SupervisorSettings(home=tmp_path / "home", LOG_LEVEL="debug")
    env = child_env(settings, declarations, {"PATH": "/bin", "LOG_LEVEL": "info"})
    assert env["PATH"] == "/bin"  # inherited
    assert env["LOG_LEVEL"] == "debug"  # the supervisor's setting wins
    assert env["HOIST_HOME"] == str(tmp_path / "home")
    assert env["PYTHONUNBUFFERED"] == "1"
    token = str(settings.admin_token_file)
    assert env["HOIST_GATEWAY_ADMIN_TOKEN_FILE"] == env["HOIST_GATEWAY_METRICS_TOKEN_FILE"] == token
    assert env["HOIST_GATEWAY_TENANTS_FILES"] == str(tenants.resolve())
    assert "HOIST_GATEWAY_TENANTS_FILES" not in child_env(settings, parse_sources([]), {})


async def test_the_first_stop_signal_cancels_the_main_task_and_the_next_forces() -> None:
    said: list[signal.Signals] = []
    forced = asyncio.Event()
    main = asyncio.create_task(asyncio.sleep(3600))
    with stop_on_signals(main, stopping=said.append, force=forced.set):
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(main, 60)
        assert said == [signal.SIGTERM] and not forced.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(forced.wait(), 60)
    assert said == [signal.SIGTERM]
