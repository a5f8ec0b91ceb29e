"""The environment `hoist up` starts its processes with: its own, plus the settings the
children read (home, model repository, log level, adapter source roots, the admin token,
the Tenant files)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from control_plane.documents import Declarations
from control_plane.local.settings import SupervisorSettings


def child_env(
    settings: SupervisorSettings, declarations: Declarations, inherited: Mapping[str, str]
) -> dict[str, str]:
    env = dict(inherited)
    env.update(
        {
            "HOIST_HOME": str(settings.home),
            "MODEL_REPOSITORY": settings.model_repository,
            "LOG_LEVEL": settings.log_level,
            "PYTHONUNBUFFERED": "1",
        }
    )
    declared = [
        a.spec.source.removeprefix("file://")
        for a in declarations.adapters
        if "://" not in a.spec.source or a.spec.source.startswith("file://")
    ]
    env.update(settings.adapter_source_env(declared))
    # the admin API's token: the gateway calls the admin API with it, and accepts it
    # on its own /metrics (the autoscaler reads the demand there)
    token_file = str(settings.admin_token_file)
    env["HOIST_GATEWAY_ADMIN_TOKEN_FILE"] = token_file
    env["HOIST_GATEWAY_METRICS_TOKEN_FILE"] = token_file
    # tenancy: the gateway reads the Tenant documents from the files that declared them
    tenant_files = sorted(
        {declarations.files[(t.kind, t.metadata.name)] for t in declarations.tenants}
    )
    if tenant_files:
        env["HOIST_GATEWAY_TENANTS_FILES"] = " ".join(str(Path(f).resolve()) for f in tenant_files)
    return env
