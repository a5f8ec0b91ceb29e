"""`hoist status`: ask the running supervisor for its state and show it as tables."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

from control_plane.api.embedded import EmbeddedState
from control_plane.local import admin_token
from control_plane.local.preflight import read_run_file

_PHASE_STYLE = {"Ready": "green", "Failed": "red", "Restarting": "yellow", "Degraded": "yellow"}


def fetch_state(run_file: Path, timeout_s: float = 5) -> EmbeddedState:
    """The state of the supervisor that `run_file` names; LookupError if none answers."""
    info = read_run_file(run_file)
    if info is None:
        raise LookupError(f"no `hoist up` is running (no live supervisor in {run_file})")
    url = f"{info['adminUrl']}/v1/state"
    token_file = info.get("adminTokenFile")
    token = admin_token.read(Path(token_file)) if isinstance(token_file, str) else None
    if token is None:
        raise LookupError(f"cannot read the admin API's token ({token_file}): run as its user")
    request = urllib.request.Request(url, headers=admin_token.bearer(token))  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - loopback
            return EmbeddedState.model_validate_json(response.read())
    except (urllib.error.URLError, TimeoutError) as exc:
        raise LookupError(
            f"the supervisor (pid {info['pid']}) does not answer at {url}: {exc}"
        ) from exc


def _phase(text: str) -> str:
    style = _PHASE_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text


def render_state(state: EmbeddedState, console: Console | None = None) -> None:
    console = console or Console()
    replicas = Table(title="Models", title_justify="left")
    for column in ("MODEL", "ENGINE", "REPLICA", "PHASE", "RESTARTS", "ADAPTERS", "URL"):
        replicas.add_column(column)
    for model in state.models:
        if not model.replicas:
            replicas.add_row(model.name, model.engine, "-", "ScaledToZero", "", "", "")
        for replica in model.replicas:
            replicas.add_row(
                model.name,
                model.engine,
                replica.name,
                _phase(replica.phase) + (f" ({replica.message})" if replica.message else ""),
                str(replica.restarts)
                + (f" ({replica.last_restart_reason})" if replica.last_restart_reason else ""),
                ", ".join(replica.adapters) or "-",
                replica.engine_url,
            )
    console.print(replicas)
    adapters = Table(title="Adapters", title_justify="left")
    for column in ("ADAPTER", "BASE", "PHASE", "READY", "DESIRED", "MESSAGE"):
        adapters.add_column(column)
    for adapter in state.adapters:
        status = adapter.status
        message = ""
        if status is not None:
            message = next((c.message for c in status.conditions if c.status != "True"), "")
        adapters.add_row(
            adapter.metadata.name,
            adapter.spec.base_model,
            _phase(status.phase if status else "Pending"),
            str(status.ready_replicas if status else 0),
            str(status.desired_replicas if status else 0),
            message,
        )
    console.print(adapters)
    if state.gateway is not None:
        console.print(f"Gateway: {state.gateway.url} ({_phase(state.gateway.phase)})")
