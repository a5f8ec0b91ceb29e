"""Engine restarts from pod container statuses -> status.engineRestarts and EngineStable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_plane.api import ConditionStatus, Model
from control_plane.model_manager.engine_restarts import (
    engine_restarts,
    engine_stable_condition,
)
from control_plane.model_manager.status import model_status

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def _pod(name: str, *containers: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"containerStatuses": list(containers)}}


def _engine(
    count: int, ago: timedelta | None = None, code: int = 137, reason: str = "Error"
) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "engine", "restartCount": count}
    if ago is not None:
        finished = (NOW - ago).isoformat().replace("+00:00", "Z")
        status["lastState"] = {
            "terminated": {"exitCode": code, "reason": reason, "finishedAt": finished}
        }
    return status


SIDECAR_RESTARTED = {"name": "sidecar", "restartCount": 4}


@pytest.mark.parametrize(
    ("pods", "total", "stable", "words"),
    [
        pytest.param([], 0, ConditionStatus.TRUE, [], id="no-pods"),
        pytest.param([_pod("p0", _engine(0))], 0, ConditionStatus.TRUE, [], id="never"),
        pytest.param(
            [_pod("p0", _engine(0), SIDECAR_RESTARTED)],
            0,
            ConditionStatus.TRUE,
            [],
            id="a-sidecar-restart-is-not-an-engine-restart",
        ),
        pytest.param(
            [_pod("p0", _engine(1, timedelta(minutes=2))), _pod("p1", _engine(0))],
            1,
            ConditionStatus.FALSE,
            ["p0", "liveness"],
            id="killed-by-liveness-recently",
        ),
        pytest.param(
            [_pod("p0", _engine(2, timedelta(minutes=1), 0, "OOMKilled"))],
            2,
            ConditionStatus.FALSE,
            ["out of memory"],
            id="oom",
        ),
        pytest.param(
            [_pod("p0", _engine(3, timedelta(hours=1), 1))],
            3,
            ConditionStatus.TRUE,
            [],
            id="long-ago-counts-but-is-stable",
        ),
        pytest.param(
            [
                _pod("p0", _engine(1, timedelta(minutes=8), 1)),
                _pod("p1", _engine(1, timedelta(minutes=3))),
            ],
            2,
            ConditionStatus.FALSE,
            ["pod p1", "2 engine restart(s) across 2 pod(s)"],
            id="names-the-latest",
        ),
    ],
)
def test_engine_restarts(
    pods: list[dict[str, Any]], total: int, stable: ConditionStatus, words: list[str]
) -> None:
    seen = engine_restarts(pods)
    assert sum(r.count for r in seen) == total
    condition = engine_stable_condition(seen, now=NOW, generation=3)
    assert condition.status is stable
    assert condition.observed_generation == 3
    for word in words:
        assert word in condition.message


def _model() -> Model:
    return Model.model_validate(
        {"metadata": {"name": "m"}, "spec": {"source": "m", "engine": "sim", "replicas": 1}}
    )


def test_model_status_reports_restarts_and_keeps_them_without_pods() -> None:
    pods = [_pod("m-0", _engine(1, timedelta(minutes=1)))]
    status = model_status(_model(), None, now=NOW, pods=pods)
    assert status.engine_restarts == 1
    assert any(c.type == "EngineStable" and c.status == "False" for c in status.conditions)
    model = _model().model_copy(update={"status": status})
    again = model_status(model, None, now=NOW)  # a Deployment event: no pod list
    assert again.engine_restarts == 1
    assert [c for c in again.conditions if c.type == "EngineStable"] == [
        c for c in status.conditions if c.type == "EngineStable"
    ]
