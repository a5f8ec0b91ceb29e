"""Settings of the embedded-default supervisor (`hoist up`), from flags or `HOIST_*` env."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane.api.adapter_sources import DEFAULT_SCHEMES
from control_plane.api.constants import ADMIN_PORT, GATEWAY_PORT
from control_plane.local.store import store_key


class SupervisorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOIST_", extra="ignore", validate_assignment=True)

    python: str = sys.executable
    """The interpreter that runs the engines, sidecars and gateway (default: this one)."""
    home: Path = Path("~/.hoist").expanduser()
    """Logs, the adapter store, downloaded adapters and the run file live here."""
    host: str = "127.0.0.1"
    """Address the gateway listens on; engines, sidecars and the admin API stay on loopback."""
    gateway_port: int = Field(default=GATEWAY_PORT, ge=1, le=65535)
    admin_port: int = Field(default=ADMIN_PORT, ge=1, le=65535)
    engine_base_port: int = Field(default=8100, ge=1, le=65535)
    """Replica k of all models (counted across models) serves its engine on base + k."""
    sidecar_base_port: int = Field(default=8200, ge=1, le=65535)
    engine_metrics_base_port: int = Field(default=8300, ge=1, le=65535)
    """The real engine's engine_api serves `model_load_time_seconds` and friends here."""
    engine_ready_timeout_s: float = Field(default=900, gt=0)
    """How long an engine may take to answer /health (the real vLLM loads for ~1 minute)."""
    ready_timeout_s: float = Field(default=60, gt=0)
    """How long a sidecar or the gateway may take to answer /healthz."""
    progress_interval_s: float = Field(default=10.0, gt=0)
    """Off a terminal (a log, CI), a line every this many seconds names the processes
    still starting and for how long; a terminal shows a spinner instead."""
    stop_grace_s: float = Field(default=15, gt=0)
    """SIGTERM, then this long, then SIGKILL for a process group."""
    max_restarts: int = Field(default=5, ge=0)
    """Consecutive crashes (or hangs) after which a process is left `Failed`."""
    engine_unresponsive_after_s: float = Field(default=10.0, gt=0)
    """An engine that answered /health and then stops answering for this long (e.g. a
    frozen process) is killed and restarted; a start is bounded by `engine_ready_timeout_s`."""
    liveness_interval_s: float = Field(default=1.0, gt=0)
    """Seconds between the liveness probes of a ready engine."""
    liveness_probe_timeout_s: float = Field(default=2.0, gt=0)
    """A liveness probe not answered within this counts as missed."""
    liveness_min_failures: int = Field(default=3, ge=1)
    """Missed probes in a row needed, besides the time bound, before a restart."""
    reconcile_interval_s: float = Field(default=2.0, gt=0)
    max_autoscaled_replicas: int = Field(default=4, ge=1, le=64)
    """Most replicas of one autoscaled model this machine runs (within its maxReplicas)."""
    autoscale_interval_s: float = Field(default=2.0, gt=0)
    drain_s: float = Field(default=3.0, ge=0)
    """A replica scaled away leaves the gateway's view this long before it is stopped."""
    gateway_tenant_keys_file: Path | None = None
    """The gateway's key file (`HOIST_GATEWAY_TENANT_KEYS_FILE`, passed on to it as is):
    checked against the declared tenants before anything starts."""
    adapter_source_schemes: str = " ".join(DEFAULT_SCHEMES)
    """Kinds of adapter source the gateway and the sidecars accept (`s3 hf https http file`)."""
    adapter_source_hosts: str = ""
    """Hosts `http(s)://` sources may name, trusted whatever they resolve to (space
    separated); empty: any host whose every address is public."""
    adapter_source_roots: str | None = None
    """Directories local adapter sources must lie in (space separated; `{tenant}`: the
    tenant's name); unset: `<home>/adapter-sources` and `MODEL_REPOSITORY`."""
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    model_repository: str = Field(
        default=str(Path("~/.hoist/models").expanduser()), validation_alias="MODEL_REPOSITORY"
    )

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def store_dir(self) -> Path:
        """Holds one adapter store per declaration (`store_dir_for`)."""
        return self.home / "store"

    def store_dir_for(self, declared: Iterable[Path]) -> Path:
        """Where the adapters added through the gateway to a `hoist up -f PATHS` persist."""
        return self.store_dir / store_key(declared)

    @property
    def run_file(self) -> Path:
        return self.home / "run" / "supervisor.json"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "run" / "admin-token"

    @property
    def adapter_sources_dir(self) -> Path:
        """Where `prepare --demo-adapter` and users put adapters to load by path."""
        return self.home / "adapter-sources"

    def adapter_source_env(self, declared: Iterable[str] = ()) -> dict[str, str]:
        """The source policy, as the gateway's and the sidecars' settings read it: both
        check it (docs/security.md), and the install directory is never a source.
        `declared`: the local sources of the adapters in the declarations `hoist up` was
        given (the operator's own input), allowed as they are."""
        roots = self.adapter_source_roots
        if roots is None:
            repository = Path(self.model_repository).expanduser().absolute()
            roots = f"{self.adapter_sources_dir.absolute()} {repository}"
        extra = [str(Path(p).absolute()) for p in declared if not any(c.isspace() for c in p)]
        roots = " ".join([roots, *extra]).strip()  # a path with a space: refused, not split
        return {
            "HOIST_GATEWAY_ADAPTER_SOURCE_SCHEMES": self.adapter_source_schemes,
            "HOIST_GATEWAY_ADAPTER_SOURCE_HOSTS": self.adapter_source_hosts,
            "HOIST_GATEWAY_ADAPTER_SOURCE_ROOTS": roots,
            "HOIST_GATEWAY_ADAPTER_INSTALL_DIRS": str(self.adapters_dir.absolute()),
            "SIDECAR_SOURCE_SCHEMES": self.adapter_source_schemes,
            "SIDECAR_SOURCE_HOSTS": self.adapter_source_hosts,
            "SIDECAR_SOURCE_ROOTS": roots,
        }
