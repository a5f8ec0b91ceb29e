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

_UNBOUNDED_WIDTH = 1000
"""Columns of a console that is no terminal: wide enough that no cell is cut or wrapped."""
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


def status_console() -> Console:
    """stdout, fitted to a terminal; off one (a pipe, a file) never cut or wrapped at 80."""
    console = Console()
    return console if console.is_terminal else Console(width=_UNBOUNDED_WIDTH)


def _pid(pid: int | None) -> str:
    return str(pid) if pid is not None else "-"


def render_state(
    state: EmbeddedState, console: Console | None = None, *, wide: bool = False
) -> None:
    """The models' replicas and the adapters as two tables; `wide` adds the processes'
    ids and every URL, and each adapter's source and replicas."""
    console = console or status_console()
    replicas = Table(title="Models", title_justify="left")
    columns = ["MODEL", "ENGINE", "REPLICA", "PHASE", "RESTARTS", "ADAPTERS", "URL"]
    if wide:
        columns += ["ENGINE PID", "SIDECAR", "SIDECAR PID", "METRICS"]
    for column in columns:
        replicas.add_column(column)
    for model in state.models:
        if not model.replicas:
            replicas.add_row(
                model.name, model.engine, "-", "ScaledToZero", *[""] * (len(columns) - 4)
            )
        for replica in model.replicas:
            row = [
                model.name,
                model.engine,
                replica.name,
                _phase(replica.phase) + (f" ({replica.message})" if replica.message else ""),
                str(replica.restarts)
                + (f" ({replica.last_restart_reason})" if replica.last_restart_reason else ""),
                ", ".join(replica.adapters) or "-",
                replica.engine_url,
            ]
            if wide:
                row += [
                    _pid(replica.engine_pid),
                    replica.sidecar_url,
                    _pid(replica.sidecar_pid),
                    replica.engine_metrics_url or "-",
                ]
            replicas.add_row(*row)
    console.print(replicas)
    adapters = Table(title="Adapters", title_justify="left")
    columns = ["ADAPTER", "BASE", "PHASE", "READY", "DESIRED", "MESSAGE"]
    if wide:
        columns += ["SOURCE", "LOADED ON"]
    for column in columns:
        adapters.add_column(column)
    for adapter in state.adapters:
        status = adapter.status
        message = ""
        if status is not None:
            message = next((c.message for c in status.conditions if c.status != "True"), "")
        row = [
            adapter.metadata.name,
            adapter.spec.base_model,
            _phase(status.phase if status else "Pending"),
            str(status.ready_replicas if status else 0),
            str(status.desired_replicas if status else 0),
            message,
        ]
        if wide:
            loaded_on = [placed.pod for placed in status.loaded_on] if status else []
            row += [adapter.spec.source, ", ".join(loaded_on) or "-"]
        adapters.add_row(*row)
    console.print(adapters)
    if state.gateway is not None:
        console.print(f"Gateway: {state.gateway.url} ({_phase(state.gateway.phase)})")
