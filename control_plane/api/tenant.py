"""The `Tenant` resource: a team sharing Hoist, with its API keys, models and quotas.

API keys are never part of the resource: `spec.apiKeysSecret` names a Kubernetes Secret
(same namespace) whose every data entry is one key, in plaintext or as `sha256:<hex>`.
The gateway keeps only SHA-256 digests of them. The embedded default reads the same
entries from a key file instead (see docs/tenancy.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from control_plane.api.adapter_sources import AdapterSourcePolicy
from control_plane.api.common import Condition, ObjectMeta, ResourceName, Strict

# A model id or a shell-style glob over model ids (`*`, `?`, `[...]`).
ModelPattern = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class QuotaStoreOutage(StrEnum):
    """What the gateway does with a tenant's requests while the shared quota store (Redis)
    cannot be reached or is too slow (its circuit breaker is open)."""

    FAIL_OPEN = "FailOpen"
    """Serve them, counting the quotas in each gateway replica alone (so a tenant may get
    up to N replicas x its quota for the outage). The default: a quota store is a
    fairness tool, not a security boundary, and its outage should not become an outage
    of the whole API."""
    FAIL_CLOSED = "FailClosed"
    """Refuse them with 503 (`quota_store_unavailable`, Retry-After) until the store
    answers: for tenants whose quota is a hard cost or contract limit."""


class TenantQuotas(Strict):
    """Limits per tenant, over all of the gateway's replicas; unset: unlimited."""

    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    """Requests admitted per rolling minute; more get 429 with `Retry-After`."""
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    """Prompt plus completion tokens per rolling minute, counted from the engine's usage."""
    concurrent_requests: Annotated[int, Field(ge=1)] | None = None
    """Requests of the tenant in flight at once; more get 429 at once."""
    max_request_tokens: Annotated[int, Field(ge=1)] | None = None
    """Most completion tokens one request may ask for, `n` x `max_tokens` (400 beyond);
    unset: the gateway's `max_request_tokens`."""
    on_store_outage: QuotaStoreOutage = QuotaStoreOutage.FAIL_OPEN
    """While the shared quota store (Redis) is unavailable: FailOpen (count per gateway
    replica) or FailClosed (refuse with 503). Only matters with a store configured."""


class SecretReference(Strict):
    name: ResourceName
    """A Secret in the Tenant's namespace: each data entry is one API key."""


class TenantSpec(Strict):
    allowed_models: list[ModelPattern] = Field(default_factory=lambda: ["*"])
    """Model and adapter ids (or globs such as `llama-*`) the tenant may use."""
    quotas: TenantQuotas = Field(default_factory=TenantQuotas)
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    """Share of a saturated fleet relative to other tenants (weighted fair queuing)."""
    api_keys_secret: SecretReference | None = None
    """Where the tenant's API keys live; never inline keys in the resource."""
    adapter_sources: AdapterSourcePolicy | None = None
    """Where the tenant's LoraAdapters may come from; unset: the deployment's policy (the
    gateway's and the operator's `adapter_source_*` settings). The sidecars' own policy
    still bounds it (docs/security.md)."""


class TenantPhase(StrEnum):
    READY = "Ready"
    """Valid spec, usable keys, every model id it names exists."""
    NOT_READY = "NotReady"
    """Something the Tenant names is missing or wrong (its Secret, a key, a model); the
    `Ready` condition says what. Fixed without touching the Tenant, it becomes Ready."""
    FAILED = "Failed"
    """The spec itself is invalid (e.g. a weight of 0, a nonsense quota): edit the Tenant."""


class TenantStatus(Strict):
    phase: TenantPhase | None = None
    keys: int | None = None
    """Distinct valid API keys found for the tenant (a count: keys never appear here)."""
    allowed_models: list[str] = Field(default_factory=list)
    """The model and adapter ids the tenant may use now: `spec.allowedModels` resolved
    against the Models and LoraAdapters of its namespace, plus its own (sorted; the first
    100)."""
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class Tenant(Strict):
    api_version: Literal["serving.hoist.dev/v1alpha1"] = "serving.hoist.dev/v1alpha1"
    kind: Literal["Tenant"] = "Tenant"
    metadata: ObjectMeta
    spec: TenantSpec = Field(default_factory=TenantSpec)
    status: TenantStatus | None = None
