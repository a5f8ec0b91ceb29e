"""The run file (`<home>/run/supervisor.json`): where a running `hoist up` says who it is
and where its admin API and gateway listen (`hoist status` and `hoist reset` read it;
`preflight.read_run_file` refuses a second `hoist up` while it names a live process)."""

from __future__ import annotations

import json
import os
import time

from control_plane.local.settings import SupervisorSettings


def write_run_file(settings: SupervisorSettings) -> None:
    path = settings.run_file
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "pid": os.getpid(),
        "adminUrl": f"http://127.0.0.1:{settings.admin_port}",
        "gatewayUrl": gateway_url(settings),
        "started": time.time(),
        "adminTokenFile": str(settings.admin_token_file),
    }
    path.write_text(json.dumps(info))


def remove_run_files(settings: SupervisorSettings) -> None:
    """The run file and the admin token: nothing runs any more."""
    settings.run_file.unlink(missing_ok=True)
    settings.admin_token_file.unlink(missing_ok=True)


def gateway_url(settings: SupervisorSettings) -> str:
    return f"http://{settings.host}:{settings.gateway_port}"
