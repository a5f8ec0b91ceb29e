"""The sidecar's settings: command-line flags over `SIDECAR_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from control_plane.api.adapter_sources import (
    DEFAULT_SCHEMES,
    TENANT_PLACEHOLDER,
    AdapterSourcePolicy,
    SourceScheme,
)


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
    engine_probe_interval_seconds: Annotated[float, Field(gt=0)] = 1
    """How often the engine's /health is probed for `/livez/engine`."""
    engine_probe_timeout_seconds: Annotated[float, Field(gt=0)] = 2
    """A liveness probe of the engine not answered within this counts as failed."""
    engine_unresponsive_after_seconds: Annotated[float, Field(gt=0)] = 20
    """`/livez/engine` fails once the engine, healthy before, has not answered this long
    (and missed 3 probes in a row). Longer than engine_api's own bound (15 s), which
    restarts a frozen vLLM inside the container first; the kubelet is the backstop."""
    engine_start_timeout_seconds: Annotated[float, Field(gt=0)] = 1800
    """`/livez/engine` passes while the engine has not answered since it (re)started,
    up to this long (the pod's startupProbe bounds the load itself)."""
    drain_timeout_seconds: Annotated[float, Field(ge=0)] = 30
    """On SIGTERM: how long adapter operations in progress may take to finish."""
    source_schemes: Annotated[list[SourceScheme], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SCHEMES)
    )
    """Kinds of adapter source fetched (`s3 hf https http file`): the outer bound of every
    Tenant's policy (docs/security.md)."""
    source_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts `http(s)://` sources may name, trusted whatever they resolve to; empty: any
    host whose every address is public."""
    source_roots: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Directories local sources must lie in once symlinks are resolved (`{tenant}`: the
    tenant the control plane names); empty: no local sources. Never `adapter_dir`."""
    hf_endpoint: str | None = Field(default=None, validation_alias="HF_ENDPOINT")
    """The Hub `hf://` sources are read from (the standard variable; unset:
    huggingface.co). Set by the operator, trusted: a tenant names only a repository."""
    hf_token: SecretStr | None = Field(default=None, validation_alias="HF_TOKEN")
    """The operator's Hub token, used when the adapter names no Secret of its own."""
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")

    @field_validator("source_schemes", "source_hosts", "source_roots", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return value.replace(";", " ").replace(",", " ").split()
        return value

    def source_policy(self) -> AdapterSourcePolicy:
        """The policy, each root as given and resolved: a source is checked as given before
        it is fetched, and once its own symlinks are resolved when it is read."""
        roots = list(self.source_roots)
        roots += [
            str(Path(root).resolve())
            for root in self.source_roots
            if TENANT_PLACEHOLDER not in root and str(Path(root).resolve()) not in roots
        ]
        return AdapterSourcePolicy(
            schemes=self.source_schemes, allowed_hosts=self.source_hosts, local_roots=roots
        )
