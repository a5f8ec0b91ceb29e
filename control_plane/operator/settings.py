"""The operator process's settings (`HOIST_OPERATOR_*` environment variables)."""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane.api.adapter_sources import DEFAULT_SCHEMES, AdapterSourcePolicy, SourceScheme


def _random_priority() -> int:
    return random.randint(1, 32767)  # noqa: S311 - peering priority, not a secret


STORE_ENV_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "HF_ENDPOINT",
)
"""The adapter stores' standard variables that say where a store is (never a secret)."""


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOIST_OPERATOR_", extra="forbid")

    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to serve (JSON list); empty: the whole cluster."""

    # Images of the inference pods.
    engine_image: str = "ghcr.io/hoist-dev/hoist-engine:0.1.0"
    """Image of the engine container for `engine: vllm` (vLLM and Hoist's engine_api)."""
    sim_image: str = "ghcr.io/hoist-dev/hoist:0.1.0"
    """Image of the engine container for `engine: sim` (Hoist's simulator)."""
    sidecar_image: str = "ghcr.io/hoist-dev/hoist:0.1.0"
    image_pull_policy: str = Field(default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")
    drain_seconds: int = Field(default=120, ge=5, le=3600)
    """Grace period of an inference pod: in-flight requests finish before it stops."""
    engine_startup_seconds: int = Field(default=1800, ge=30)
    """How long an engine may take to load its weights before the kubelet restarts it."""
    adapter_volume_size: str = "8Gi"
    model_volume_size: str = "64Gi"
    """Size limit of the `emptyDir` the engine downloads weights into (/models)."""
    inference_service_account: str | None = None
    """ServiceAccount of the inference pods (e.g. `hoist-inference`); unset: the
    namespace's default. Their API token is never mounted either way."""
    """Size limit of the emptyDir shared by the sidecar (writes adapters) and the engine."""
    native_sidecar: bool = True
    """Run the adapter sidecar as a native sidecar (an init container with `restartPolicy:
    Always`, Kubernetes >= 1.29): started before the engine, stopped after it. Set false on
    older clusters, where it runs as a second regular container."""

    # The tenant boundary: where adapters may come from (docs/security.md).
    adapter_source_schemes: list[SourceScheme] = Field(
        default_factory=lambda: list(DEFAULT_SCHEMES)
    )
    """Kinds of adapter source allowed (JSON list of `s3`, `hf`, `https`, `http`, `file`); also
    handed to every sidecar, which checks again when it fetches."""
    sidecar_store_env: dict[str, str] = Field(default_factory=dict)
    """Where the sidecars find the adapter stores (JSON object of standard variables, set
    on every sidecar), e.g. `{"AWS_ENDPOINT_URL": "http://minio.storage:9000",
    "AWS_REGION": "eu-central-1", "AWS_ALLOW_HTTP": "true", "HF_ENDPOINT": "..."}`. Trusted
    (the operator's). Credentials are not accepted here: name a Secret on the LoraAdapter."""
    adapter_source_hosts: list[str] = Field(default_factory=list)
    """Hosts `http(s)://` sources may name, trusted whatever they resolve to (JSON list);
    empty: any host whose every address is public."""
    adapter_source_roots: list[str] = Field(default_factory=list)
    """Directories in the sidecar's filesystem local sources must lie in (JSON list;
    `{tenant}`: the tenant's name); empty: no local sources."""

    # Reconciliation.
    # (periodic passes of the operator's walk, `operator/walk.py`; no kopf timers)
    adapter_resync_seconds: float = Field(default=30.0, gt=0)
    """Interval of the pass that compares declared with loaded adapters (drift repair,
    re-admission of refused adapters) and unloads undeclared ones."""
    model_resync_seconds: float = Field(default=60.0, gt=0)
    """Interval of the pass that re-applies each Model's Deployment and refreshes status."""
    tenant_resync_seconds: float = Field(default=30.0, gt=0)
    """Interval of the pass that re-validates the Tenants (their key Secrets, the keys of
    the other tenants, the Models they name may change without a Tenant changing)."""
    walk_concurrency: int = Field(default=8, ge=1)
    """Resources one periodic pass works on at once (sidecar calls may take long)."""
    sidecar_timeout_seconds: float = Field(default=120.0, gt=0)
    """Longest wait for one sidecar call (a PUT downloads and loads the adapter)."""
    max_load_failures: int = Field(default=5, ge=1)
    """Passes in a row that saw an adapter refused before it goes `Failed`."""
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    backoff_cap_seconds: float = Field(default=300.0, gt=0)

    # Autoscaler (Models with `autoscaling.enabled`).
    autoscaler_enabled: bool = True
    autoscaler_interval_seconds: float = Field(default=2.0, gt=0)
    """How often each autoscaled Model is evaluated."""
    gateway_namespace: str | None = None
    """Where the gateway's pods run (their `/metrics` give the demand); unset: the first
    served namespace, or `hoist`."""
    gateway_selector: str = "app.kubernetes.io/name=hoist-gateway"
    gateway_metrics_token_file: Path | None = None
    """The token the gateway's `/metrics` accepts (its `HOIST_GATEWAY_METRICS_TOKEN_FILE`,
    the Secret `hoist-gateway-metrics`); unset or absent: scrape without one."""

    # Several replicas of the operator: kopf peering, the highest priority works.
    peering_name: str = "hoist"
    """Name of the `KopfPeering` object the replicas meet in (one per namespace served)."""
    peering_priority: int = Field(default_factory=_random_priority, ge=0)
    """Higher wins; replicas get distinct random ones by default."""
    peering_mandatory: bool = False
    """Pause (instead of running alone) while the peering resource is missing."""
    standalone: bool = False
    """Ignore peering (a single replica, e.g. for development)."""

    # The process.
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    """`/metrics` and `/healthz`; 0 picks a free port."""
    log_level: str = "INFO"

    def adapter_source_policy(self) -> AdapterSourcePolicy:
        """The policy for adapters whose Tenant sets none (or that have no tenant)."""
        return AdapterSourcePolicy(
            schemes=self.adapter_source_schemes,
            allowed_hosts=self.adapter_source_hosts,
            local_roots=self.adapter_source_roots,
        )

    @field_validator("sidecar_store_env")
    @classmethod
    def _store_variables_only(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STORE_ENV_NAMES))
        if unknown:
            raise ValueError(
                f"not a store location variable: {', '.join(unknown)} (allowed:"
                f" {', '.join(STORE_ENV_NAMES)}; credentials go in a Secret)"
            )
        return value

    def sidecar_source_env(self) -> tuple[tuple[str, str], ...]:
        """The same policy, as the sidecars' `SIDECAR_SOURCE_*` settings read it, and where
        the stores are."""
        return (
            ("SIDECAR_SOURCE_SCHEMES", " ".join(self.adapter_source_schemes)),
            ("SIDECAR_SOURCE_HOSTS", " ".join(self.adapter_source_hosts)),
            ("SIDECAR_SOURCE_ROOTS", " ".join(self.adapter_source_roots)),
            *sorted(self.sidecar_store_env.items()),
        )

    def gateway_metrics_headers(self) -> tuple[tuple[str, str], ...]:
        path = self.gateway_metrics_token_file
        try:
            token = path.read_text(encoding="utf-8").strip() if path is not None else ""
        except FileNotFoundError:  # the Secret is optional
            token = ""
        return (("Authorization", f"Bearer {token}"),) if token else ()
