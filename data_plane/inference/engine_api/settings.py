"""engine_api's settings: flags over environment variables (`ENGINE_*`, `MODEL_REPOSITORY`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENGINE_", use_attribute_docstrings=True)

    model_repository: str = Field(
        default="~/.hoist/models",
        validation_alias=AliasChoices("MODEL_REPOSITORY", "ENGINE_MODEL_REPOSITORY"),
    )
    """Where model names resolve: a directory (path or file://) or a base http(s):// URL."""
    hoist_home: Path = Field(
        default=Path("~/.hoist"), validation_alias=AliasChoices("HOIST_HOME", "ENGINE_HOIST_HOME")
    )
    """Hoist's state directory; downloads are cached under `<home>/cache/models`."""
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    auto_prepare: bool = True
    """Prepare a known model (see `engine_api.prepare`) missing from a local repository."""
    python: str = sys.executable
    """The interpreter that runs vLLM (one with vLLM installed)."""
    cpu_kvcache_gib: Annotated[float, Field(gt=0)] = 1
    """KV cache size on CPU-only machines (VLLM_CPU_KVCACHE_SPACE)."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    """Port of engine_api's own /metrics (model load time, restarts); unset: not served."""
    start_timeout_seconds: Annotated[float, Field(gt=0)] = 900
    """How long a start may take to answer /health before it counts as failed."""
    health_interval_seconds: Annotated[float, Field(gt=0)] = 1
    """Seconds between /health probes (while starting and once ready)."""
    health_timeout_seconds: Annotated[float, Field(gt=0)] = 2
    """A /health probe not answered within this counts as failed."""
    unresponsive_after_seconds: Annotated[float, Field(gt=0)] = 15
    """A ready engine that has not answered /health for this long (alive but frozen:
    a wedged GPU context, a deadlock) is killed and restarted. Starts are bounded by
    `start_timeout_seconds` instead, so a slow model load is never cut short."""
    unhealthy_after_failures: Annotated[int, Field(ge=1)] = 3
    """...and only after this many failed probes in a row."""
    stop_grace_seconds: Annotated[float, Field(ge=0)] = 20
    """On stop: how long vLLM may take after SIGTERM before its group is killed."""
    restart_base_seconds: Annotated[float, Field(gt=0)] = 2
    restart_cap_seconds: Annotated[float, Field(gt=0)] = 60
    max_failed_starts: Annotated[int, Field(ge=1)] = 3
    download_timeout_seconds: Annotated[float, Field(gt=0)] = 3600

    @property
    def local_repository(self) -> Path:
        """MODEL_REPOSITORY as a local directory (meaningless when it is a URL)."""
        return Path(self.model_repository).expanduser()

    @property
    def cache_root(self) -> Path:
        return self.hoist_home.expanduser() / "cache" / "models"
