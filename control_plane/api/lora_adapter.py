"""The `LoraAdapter` resource: an adapter to load onto the pods of a base model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator

from control_plane.api.common import Condition, ObjectMeta, ResourceName, Strict

SUPPORTED_SCHEMES = ("file", "http", "https", "s3", "hf")
# A local path (no scheme) or one of the supported schemes. Mirrored in the CRD schema.
SOURCE_PATTERN = r"^([^:]+|(file|https?|s3|hf)://.+)$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"


class PlacementPolicy(StrEnum):
    FEWEST_ADAPTERS = "fewest-adapters"
    """Prefer the pods that hold the fewest adapters (spreads adapters evenly)."""
    LEAST_LOADED = "least-loaded"
    """Prefer the pods with the fewest requests in flight."""


class Placement(Strict):
    replicas: Annotated[int, Field(ge=1, le=1000)] | Literal["all"] = "all"
    """On how many of the base model's pods to load the adapter; `all` follows scaling."""
    policy: PlacementPolicy = PlacementPolicy.FEWEST_ADAPTERS


# A DNS subdomain, as Kubernetes names Secrets.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # noqa: S105


class SecretRef(Strict):
    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    """The Secret's name, in the LoraAdapter's namespace."""


class LoraAdapterSpec(Strict):
    base_model: ResourceName
    """The `Model` (same namespace) whose pods load this adapter."""
    source: str = Field(
        min_length=1, max_length=2048, json_schema_extra={"pattern": SOURCE_PATTERN}
    )
    """A local path, `file://` or `http(s)://` URI of the adapter directory or archive;
    `s3://bucket/key` (an archive) or `s3://bucket/prefix/` (an unpacked adapter) in the
    operator's S3 store; or `hf://org/repo@revision`, a repository on the operator's Hub."""
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    """When set, the fetched adapter must hash to this value, or it is refused."""
    credentials_secret_ref: SecretRef | None = None
    """A Secret in this namespace with the credentials to fetch the source: keys
    `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) for `s3://`,
    `HF_TOKEN` for `hf://`. Read by the LoRA manager and handed to the sidecar for the fetch
    only; never shown in status, events or logs. Unset: the sidecar's own credentials."""
    placement: Placement = Field(default_factory=Placement)
    tenant: str | None = Field(default=None, min_length=1, max_length=63)

    @field_validator("source")
    @classmethod
    def _supported_scheme(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if sep and scheme not in SUPPORTED_SCHEMES:
            supported = ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
            raise ValueError(f"unsupported scheme {scheme}://; use a local path or {supported}")
        return value


class LoraAdapterPhase(StrEnum):
    PENDING = "Pending"
    LOADING = "Loading"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class LoadedOn(Strict):
    pod: str
    since: datetime
    sha256: str | None = None


class LoraAdapterStatus(Strict):
    phase: LoraAdapterPhase = LoraAdapterPhase.PENDING
    loaded_on: list[LoadedOn] = Field(default_factory=list)
    ready_replicas: int = 0
    desired_replicas: int = 0
    failures: int = 0
    """Consecutive failed load attempts; at the limit the adapter goes `Failed`."""
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class LoraAdapter(Strict):
    api_version: Literal["serving.hoist.dev/v1alpha1"] = "serving.hoist.dev/v1alpha1"
    kind: Literal["LoraAdapter"] = "LoraAdapter"
    metadata: ObjectMeta
    spec: LoraAdapterSpec
    status: LoraAdapterStatus | None = None
