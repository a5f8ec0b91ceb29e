"""Before anything starts: the process plan of a set of declarations, whether its ports are
free, and whether another supervisor runs already (its run file)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from control_plane.documents import Declarations
from control_plane.local.plan import Plan, PlanSettings, ProcessSpec, Role, plan
from control_plane.local.settings import SupervisorSettings


def plan_for(declarations: Declarations, settings: SupervisorSettings) -> Plan:
    return plan(
        declarations.models,
        PlanSettings(
            python=settings.python,
            host=settings.host,
            gateway_port=settings.gateway_port,
            admin_port=settings.admin_port,
            engine_base_port=settings.engine_base_port,
            sidecar_base_port=settings.sidecar_base_port,
            engine_metrics_base_port=settings.engine_metrics_base_port,
            adapters_dir=str(settings.adapters_dir),
            engine_ready_timeout_s=settings.engine_ready_timeout_s,
            ready_timeout_s=settings.ready_timeout_s,
            max_autoscaled_replicas=settings.max_autoscaled_replicas,
        ),
    )


def check_ports(the_plan: Plan, settings: SupervisorSettings) -> list[str]:
    """Every reason the plan's ports cannot be bound, before anything starts."""
    wanted: list[tuple[int, str, str]] = [(settings.admin_port, "127.0.0.1", "admin API")]
    wanted += [(p.port, _bind_host(p, settings), p.name) for p in the_plan.processes]
    wanted += [
        (p.metrics_port, "127.0.0.1", f"{p.name} metrics")
        for p in the_plan.processes
        if p.metrics_port is not None
    ]
    wanted += [
        (p.kv_events_port, "127.0.0.1", f"{p.name} KV-cache events")
        for p in the_plan.processes
        if p.kv_events_port is not None
    ]
    problems = []
    seen: dict[int, str] = {}
    for port, host, who in wanted:
        if port in seen:
            problems.append(f"port {port} is assigned to both {seen[port]} and {who}; "
                            "move the port ranges apart (HOIST_*_PORT settings)")  # fmt: skip
            continue
        seen[port] = who
        if port > 65535:
            problems.append(f"{who} would need port {port}, beyond 65535")
        elif not _port_free(host, port):
            problems.append(f"port {port} ({who}) is already in use on {host}")
    return problems


def _bind_host(spec: ProcessSpec, settings: SupervisorSettings) -> str:
    return settings.host if spec.role is Role.GATEWAY else "127.0.0.1"


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def read_run_file(path: Path) -> dict[str, object] | None:
    """The running supervisor's run file, or None when none is running."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return dict(info)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
