"""The gateway's settings: one pydantic-settings class, validated at start-up.

Environment variables use the prefix `HOIST_GATEWAY_` (e.g. `HOIST_GATEWAY_DISCOVERY`),
except the seed's own names, kept as they are: `MAX_CONCURRENT_REQUESTS`, `LOG_LEVEL`,
`MODEL_REPOSITORY`. Command-line flags (`python -m data_plane.gateway --help`) win over both.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from control_plane.api.adapter_sources import DEFAULT_SCHEMES, AdapterSourcePolicy, SourceScheme


class DiscoveryKind(StrEnum):
    LOCAL = "local"
    """The embedded default's admin API (`GET /v1/state`)."""
    STATIC = "static"
    """A fixed list of upstreams (flags, env or a file): tests and benchmarks."""
    KUBERNETES = "kubernetes"
    """Pods of each Model and LoraAdapter resources, from the Kubernetes API."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item for item in value.replace(";", " ").split() if item]
    return value


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOIST_GATEWAY_",
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Server processes sharing the port (SO_REUSEPORT). Unset, `python -m data_plane.gateway`
    runs one per available core: CPU affinity within the cgroup's CPU quota (a Kubernetes
    CPU limit), or one while tenants declare quotas and no `tenant_redis_url` shares their
    counters (worker_count.py); a gateway built in-process is one. Each routes on its own
    view of the load, and the limits (`max_concurrent_requests`, `per_replica_max_in_flight`)
    are split among them."""
    discovery: DiscoveryKind = DiscoveryKind.LOCAL
    admin_url: str = "http://127.0.0.1:8079"
    """Local discovery: the supervisor's admin API."""
    admin_token_file: Path | None = None
    """Local discovery: the admin API's token (`hoist up` writes it and sets this)."""
    metrics_token_file: Path | None = None
    """A token, besides the operator keys, that `/metrics` accepts while keys are on (the
    embedded default's autoscaler, a Prometheus scrape credential)."""
    upstreams: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Static discovery: `MODEL=URL[,URL...]` entries (space or `;` separated in the env)."""
    upstreams_file: Path | None = None
    """Static discovery: a JSON or YAML file shaped like the admin API's `/v1/state`."""
    kube_api_url: str | None = None
    """Kubernetes discovery: the API server; unset: in-cluster (service account)."""
    kube_namespace: str = "default"
    """Kubernetes discovery: the namespace of the Models, LoraAdapters and Tenants."""
    kube_model_namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Kubernetes discovery: more namespaces whose Models (and their pods and adapters) are
    served, e.g. a tenant's own namespace with its GPU quota (space, `;` or `,` separated
    in the env). A model name must be unique across them all."""
    kube_token_file: Path | None = None
    kube_ca_file: Path | None = None
    engine_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Kubernetes discovery: the engine's port on each pod."""
    kube_request_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """Kubernetes: the longest wait for one API call (a watch's reads excepted)."""
    kube_watch_timeout_s: Annotated[int, Field(ge=1, le=3600)] = 300
    """Kubernetes discovery: the API server ends each watch request after this long (its
    `timeoutSeconds`); the watch is re-opened from the last resourceVersion."""
    kube_watch_silence_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    """Kubernetes discovery: a watch that brings nothing, not even a bookmark (the API
    server sends one about every minute), for this long is restarted."""
    kube_backoff_base_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    """Kubernetes discovery: the first wait after a failed list or watch, doubled per
    failure in a row up to `kube_backoff_cap_s`."""
    kube_backoff_cap_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Kubernetes discovery: the longest wait between two attempts."""
    discovery_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    load_poll_interval_s: Annotated[float, Field(ge=0, le=3600)] = 1.0
    """How often each engine's `/metrics` is read for its waiting queue; 0: never."""

    max_concurrent_requests: Annotated[int, Field(ge=1)] = Field(
        default=1024,
        validation_alias=AliasChoices(
            "max_concurrent_requests",
            "MAX_CONCURRENT_REQUESTS",
            "HOIST_GATEWAY_MAX_CONCURRENT_REQUESTS",
        ),
    )
    """Requests the gateway serves at once; more wait up to `queue_timeout_s`, then 429."""
    per_replica_max_in_flight: Annotated[int, Field(ge=0)] = 256
    """Requests in flight per replica (0: no cap); more wait, then 429."""
    queue_timeout_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    cold_start_hold_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """How long a request waits for a model (or adapter) with no ready replica to get one
    (scale from zero, a restart, an adapter being loaded) before it gets 503."""
    cold_start_max_held: Annotated[int, Field(ge=0)] = 256
    """Requests held at once per model while it has no ready replica; more get 503 at
    once. Held requests count against `max_concurrent_requests`, so this keeps one model's
    cold start from taking every slot of the gateway."""
    retry_after_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    """A client that takes longer to send its body gets 408."""
    max_header_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    """Most bytes a request head (request line and headers) may take; a longer one gets 431
    and its connection is closed (httptools buffers a head whole, without a bound)."""
    header_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """A connection that has not sent a whole request head this long after it opened (or
    after the first byte of a later request on it) is closed: no slot is held by a client
    that never finishes. Between requests, uvicorn's keep-alive timeout applies."""
    max_request_tokens: Annotated[int, Field(ge=1)] = 262_144
    """Most completion tokens one request may ask for: `n` (128 at most, as OpenAI) x the
    prompts of a batch completion x `max_tokens`; more get 400. A Tenant may set its own
    (`quotas.maxRequestTokens`)."""
    assumed_max_tokens: Annotated[int, Field(ge=1)] = 4096
    """What a request without `max_tokens` counts per choice against `max_request_tokens`."""
    connect_timeout_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    first_byte_timeout_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    """Longest wait for an attempt's first byte (non-streaming: its whole answer), the
    ceiling of the timeout derived from the engine's timing and queue (liveness.py); used
    as it is while the engine's timing is unknown."""
    first_byte_floor_s: Annotated[float, Field(gt=0, le=86400)] = 5.0
    """The derived first-byte timeout is never shorter than this (unless
    `first_byte_timeout_s` is)."""
    timeout_slack: Annotated[float, Field(ge=1, le=1000)] = 4.0
    """The derived first-byte timeout is this times the expected wait (recent TTFT, the
    queue ahead drained at the engine's throughput, non-streaming: `max_tokens` tokens)."""
    idle_timeout_s: Annotated[float, Field(gt=0, le=86400)] = 60.0
    """Longest silence between two chunks of a stream (the stall bound's ceiling)."""
    stall_floor_s: Annotated[float, Field(gt=0, le=86400)] = 5.0
    """A stream is stalled after `stall_factor` x the engine's recent inter-token latency
    without a chunk, but never sooner than this (unless `idle_timeout_s` is)."""
    stall_factor: Annotated[float, Field(ge=1, le=100000)] = 50.0
    stall_sweep_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    """How often one sweeper checks every in-flight stream for a stall."""
    health_probe_interval_s: Annotated[float, Field(ge=0, le=3600)] = 1.0
    """Pause between rounds of active health probes (`GET health_probe_path` on each
    replica that did not answer a request since the last round); 0: no probes."""
    health_probe_timeout_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    health_probe_failures: Annotated[int, Field(ge=1, le=100)] = 2
    """Failed probes in a row that mark a replica hung: out of rotation, its unanswered
    requests retried elsewhere and its streams ended, until a probe succeeds again."""
    health_probe_path: str = "/health"
    """vLLM's liveness endpoint."""
    outlier_factor: Annotated[float, Field(gt=1, le=1000)] = 3.0
    """Latency outlier: a replica whose time to first byte averages this times its peers'
    median (and `outlier_min_gap_s` more) is ejected for the cool-down."""
    outlier_min_gap_s: Annotated[float, Field(ge=0, le=3600)] = 0.5
    outlier_min_samples: Annotated[int, Field(ge=1)] = 20
    outlier_max_ejected_fraction: Annotated[float, Field(ge=0, le=1)] = 0.34
    """At most this fraction of a model's replicas out at once for latency (0: never)."""
    drain_delay_s: Annotated[float, Field(ge=0, le=3600)] = 5.0
    """On SIGTERM: how long `/readyz` fails while the gateway still accepts and serves (so
    a load balancer stops sending), answers closing their connections; then it stops
    accepting."""
    drain_grace_s: Annotated[float, Field(ge=0, le=86400)] = 30.0
    """After `drain_delay_s`: how long requests and streams in flight may take to finish
    before they are cut. Kubernetes' terminationGracePeriodSeconds must exceed the sum."""
    reuse_port: bool = False
    """Listen with SO_REUSEPORT, so that a new gateway can start on the port of one that
    drains (a rolling restart on one host)."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Other replicas tried when one fails before the first byte reached the client."""
    prefix_chars: Annotated[int, Field(ge=1, le=65536)] = 256
    """Prompt characters hashed for prefix affinity."""
    load_factor: Annotated[float, Field(ge=1, le=100)] = 1.25
    """Bounded load: no replica above this times the mean load (prefix affinity, default)."""
    failures_to_eject: Annotated[int, Field(ge=1)] = 3
    eject_cooldown_s: Annotated[float, Field(gt=0)] = 5.0
    max_eject_cooldown_s: Annotated[float, Field(gt=0)] = 60.0
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """When set, clients must send `Authorization: Bearer <one of these>`."""
    # --- tenancy (data_plane/gateway/tenancy, docs/tenancy.md) ---
    tenants_files: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    """YAML files whose `Tenant` documents declare the tenants (other kinds are skipped)."""
    tenant_keys_file: Path | None = None
    """`tenant: key` lines (plaintext or `sha256:<hex>`); held only as SHA-256 digests."""
    tenant_cache_salt: bool = True
    """Send each tenant's own `cache_salt` upstream, isolating its prefix cache."""
    tenant_fair_queuing: bool = True
    """Requests waiting for a replica are woken by weighted fair queuing across tenants
    (tenant weights); off: first come, first served, and arrivals may take a freed slot."""
    tenant_reserve_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.25
    """While several tenants are active, this fraction of a model's slots (at least one)
    is kept for tenants under their weighted share; 0: fair queuing only."""
    tenant_overcommit: Annotated[int, Field(ge=0)] = 2
    """While several tenants are active, a tenant under its weighted share may send up to
    this many requests over `per_replica_max_in_flight` to a replica whose engine queues
    nothing; 0: the cap holds for everyone. Keep cap + this within vLLM's max_num_seqs."""
    tenant_redis_url: str | None = None
    """`redis://host:port/db`: quota counters shared by all replicas; unset: per process."""
    tenant_redis_timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.25
    """Bound on each quota-store call (connect, read, the whole call); past it the call
    counts as a failure towards the breaker and the tenant's `onStoreOutage` decides."""
    tenant_share_sync_interval_s: Annotated[float, Field(ge=0, le=5)] = 0.05
    """With `tenant_redis_url`: how often this process publishes its requests in flight
    (per tenant and per replica) and reads the other gateway processes', so fair shares
    and the per-replica cap hold across all of them (docs/tenancy.md); 0: each process
    decides alone."""
    tenant_share_lease_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    """A process's published numbers expire this long after its last sync (a process
    that died stops counting)."""
    # --- end tenancy ---
    # --- adapter sources (control_plane/api/adapter_sources.py, docs/security.md) ---
    adapter_source_schemes: Annotated[list[SourceScheme], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SCHEMES)
    )
    """The kinds of adapter source the adapter API accepts (`s3 hf https http file`)."""
    adapter_source_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts `http(s)://` sources may name, trusted whatever they resolve to; empty: any
    host whose every address is public."""
    adapter_source_roots: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Directories local sources must lie in (`{tenant}`: the tenant's name); empty:
    `MODEL_REPOSITORY` when set, else no local sources."""
    adapter_install_dirs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Where sidecars install adapters: never a source, whatever the roots say."""

    log_level: str = Field(
        default="INFO",
        validation_alias=AliasChoices("log_level", "LOG_LEVEL", "HOIST_GATEWAY_LOG_LEVEL"),
    )
    model_repository: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "model_repository", "MODEL_REPOSITORY", "HOIST_GATEWAY_MODEL_REPOSITORY"
        ),
    )
    """Where weights and adapters live: relative adapter sources are resolved against it."""

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in (
                "upstreams",
                "api_keys",
                "tenants_files",
                "adapter_source_schemes",
                "adapter_source_hosts",
                "adapter_source_roots",
                "adapter_install_dirs",
            ):
                if key in data:
                    data[key] = _split(data[key])
            namespaces = data.get("kube_model_namespaces")
            if isinstance(namespaces, str):
                data["kube_model_namespaces"] = _split(namespaces.replace(",", " "))
        return data

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        self.log_level = self.log_level.upper()
        if self.log_level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError("LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        if self.discovery is DiscoveryKind.STATIC and not (self.upstreams or self.upstreams_file):
            raise ValueError("static discovery needs --upstream MODEL=URL or --upstreams-file")
        if (
            self.discovery is DiscoveryKind.KUBERNETES
            and self.kube_api_url is None
            and "KUBERNETES_SERVICE_HOST" not in os.environ
        ):
            raise ValueError("kubernetes discovery needs --kube-api-url outside a cluster")
        if self.max_eject_cooldown_s < self.eject_cooldown_s:
            raise ValueError("max_eject_cooldown_s must be at least eject_cooldown_s")
        return self

    def adapter_source_policy(self) -> AdapterSourcePolicy:
        """The policy for adapter sources that no Tenant of their own overrides."""
        roots = self.adapter_source_roots
        if not roots and self.model_repository is not None:
            roots = [str(self.model_repository.expanduser().absolute())]
        return AdapterSourcePolicy(
            schemes=self.adapter_source_schemes,
            allowed_hosts=self.adapter_source_hosts,
            local_roots=roots,
        )


def read_token(path: Path | None) -> str | None:
    """The token a settings field names (a file of one line), or None when unset or
    absent (an optional Secret not created). Unreadable: a start-up error (OSError)."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
