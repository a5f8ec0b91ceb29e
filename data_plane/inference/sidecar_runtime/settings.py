"""The sidecar's settings: command-line flags over `SIDECAR_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SidecarSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIDECAR_", use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8090
    engine_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
    """Base URL of the vLLM engine in the same pod."""
    adapter_dir: Path = Path("/adapters")
    """Directory shared with the engine, where fetched adapters are kept."""
    max_adapter_bytes: Annotated[int, Field(gt=0)] = 2 * 1024**3
    """Largest adapter accepted: download size and unpacked size."""
    fetch_timeout_seconds: Annotated[float, Field(gt=0)] = 600
    engine_timeout_seconds: Annotated[float, Field(gt=0)] = 120
    """Per call to the engine; loading a large adapter can take a while."""
    poll_interval_seconds: Annotated[float, Field(gt=0)] = 2
    """How often the engine's health and adapter list are observed."""
    retry_base_seconds: Annotated[float, Field(gt=0)] = 1
    retry_cap_seconds: Annotated[float, Field(gt=0)] = 60
    drain_timeout_seconds: Annotated[float, Field(ge=0)] = 30
    """On SIGTERM: how long adapter operations in progress may take to finish."""
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
