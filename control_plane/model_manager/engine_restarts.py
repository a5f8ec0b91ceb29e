"""Engine restarts of a Model's pods, from their container statuses (pure).

The kubelet restarts the engine container when it crashes or when its liveness probe
(through the sidecar's `/livez/engine`) fails; each pod's `containerStatuses` keeps the
count and the last termination. This turns them into `status.engineRestarts` and the
`EngineStable` condition: False while the last restart is recent, naming the pod and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from control_plane.api import Condition, ConditionStatus
from control_plane.api.constants import CONDITION_ENGINE_STABLE

Json = dict[str, Any]

RECENT = timedelta(minutes=10)
"""A restart this recent keeps `EngineStable` False."""
ENGINE_CONTAINER = "engine"


@dataclass(frozen=True)
class EngineRestart:
    pod: str
    count: int
    finished_at: datetime | None
    exit_code: int | None
    reason: str


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def engine_restarts(pods: list[Json]) -> list[EngineRestart]:
    """The engine container of each pod that restarted at least once."""
    found: list[EngineRestart] = []
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name", "?"))
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            count = container.get("restartCount")
            if container.get("name") != ENGINE_CONTAINER or not isinstance(count, int) or not count:
                continue
            last = (container.get("lastState") or {}).get("terminated") or {}
            code = last.get("exitCode")
            found.append(
                EngineRestart(
                    pod=name,
                    count=count,
                    finished_at=_parse_time(last.get("finishedAt")),
                    exit_code=code if isinstance(code, int) else None,
                    reason=str(last.get("reason") or "Unknown"),
                )
            )
    return found


def _why(restart: EngineRestart) -> str:
    if restart.reason == "OOMKilled":
        return "out of memory"
    if restart.exit_code == 137:
        return "killed (exit 137: a failed liveness probe, the engine had stopped answering)"
    if restart.exit_code is not None:
        return f"exited with code {restart.exit_code} ({restart.reason})"
    return restart.reason


def engine_stable_condition(
    restarts: list[EngineRestart], *, now: datetime, generation: int | None
) -> Condition:
    """True when no engine restarted in the last `RECENT`; else False, naming the latest."""
    dated = [r for r in restarts if r.finished_at is not None]
    latest = max(dated, key=lambda r: r.finished_at or now, default=None)
    if latest is not None and latest.finished_at is not None and now - latest.finished_at < RECENT:
        total = sum(r.count for r in restarts)
        message = (
            f"pod {latest.pod}: engine {_why(latest)} at {latest.finished_at.isoformat()};"
            f" {total} engine restart(s) across {len(restarts)} pod(s)"
        )
        return Condition(
            type=CONDITION_ENGINE_STABLE,
            status=ConditionStatus.FALSE,
            reason="EngineRestarted",
            message=message,
            observed_generation=generation,
        )
    return Condition(
        type=CONDITION_ENGINE_STABLE,
        status=ConditionStatus.TRUE,
        reason="NoRecentRestarts",
        message=f"no engine restarted in the last {int(RECENT.total_seconds() // 60)} minutes",
        observed_generation=generation,
    )
