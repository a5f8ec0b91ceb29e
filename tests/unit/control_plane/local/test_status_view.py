"""`hoist status` tables: a replica's restarts say why."""

from __future__ import annotations

from rich.console import Console

from control_plane.api.embedded import (
    EmbeddedState,
    ModelState,
    ReplicaPhase,
    ReplicaState,
)
from control_plane.local.status_view import render_state


def _state(restarts: int, reason: str | None) -> EmbeddedState:
    replica = ReplicaState(
        name="tiny-0",
        engine_url="http://127.0.0.1:8100",
        sidecar_url="http://127.0.0.1:8200",
        phase=ReplicaPhase.READY,
        ready=True,
        restarts=restarts,
        last_restart_reason=reason,
    )
    model = ModelState(
        name="tiny",
        engine="sim",
        routing_policy="default",
        desired_replicas=1,
        max_loras=1,
        replicas=[replica],
    )
    return EmbeddedState(models=[model])


def _text(state: EmbeddedState) -> str:
    console = Console(width=200, record=True, color_system=None)
    render_state(state, console)
    return console.export_text()


def test_a_restart_shows_its_reason() -> None:
    assert "2 (unresponsive)" in _text(_state(2, "unresponsive"))


def test_no_restart_shows_a_bare_count() -> None:
    text = _text(_state(0, None))
    row = next(line for line in text.splitlines() if "tiny-0" in line)
    assert " 0 " in row
    assert "(" not in row
