"""What each tenant may use: its models and adapters, from Tenant documents (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from pydantic import ValidationError

from control_plane.api import QuotaStoreOutage, Tenant
from control_plane.api.adapter_sources import AdapterSourcePolicy


class TenantsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    name: str
    allowed_models: tuple[str, ...] = ("*",)
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_requests: int | None = None
    weight: int = 1
    max_request_tokens: int | None = None
    adapter_sources: AdapterSourcePolicy | None = field(default=None, compare=False)
    """Where its adapters may come from; None: the gateway's policy."""
    fail_closed: bool = False
    """Refuse (503) rather than count locally while the shared quota store is down."""

    def allows(self, model_id: str) -> bool:
        return any(fnmatchcase(model_id, pattern) for pattern in self.allowed_models)

    @classmethod
    def from_tenant(cls, tenant: Tenant) -> TenantPolicy:
        quotas = tenant.spec.quotas
        return cls(
            name=tenant.metadata.name,
            allowed_models=tuple(tenant.spec.allowed_models),
            requests_per_minute=quotas.requests_per_minute,
            tokens_per_minute=quotas.tokens_per_minute,
            concurrent_requests=quotas.concurrent_requests,
            weight=tenant.spec.weight,
            max_request_tokens=quotas.max_request_tokens,
            adapter_sources=tenant.spec.adapter_sources,
            fail_closed=quotas.on_store_outage is QuotaStoreOutage.FAIL_CLOSED,
        )


def without_status(doc: Any) -> Any:
    """A Tenant document less its `status`: the gateway acts on the spec alone, so a status
    written by a newer operator (or pasted from `kubectl get -o yaml`) never refuses it."""
    if isinstance(doc, dict) and "status" in doc:
        return {k: v for k, v in doc.items() if k != "status"}
    return doc


def parse_tenants(documents: list[Any]) -> dict[str, TenantPolicy]:
    """Policies from Tenant documents; other kinds are skipped, a bad Tenant refused."""
    out: dict[str, TenantPolicy] = {}
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "Tenant":
            continue
        try:
            tenant = Tenant.model_validate(without_status(doc))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise TenantsError(f"Tenant: {loc}: {first['msg']}") from None
        if tenant.metadata.name in out:
            raise TenantsError(f"Tenant {tenant.metadata.name!r} is declared twice")
        out[tenant.metadata.name] = TenantPolicy.from_tenant(tenant)
    return out


class Access(StrEnum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"
    """Shared, but not among the tenant's allowed models: 403."""
    HIDDEN = "hidden"
    """Another tenant's own: answered as if it did not exist (404), so names never leak."""


def access(tenant: TenantPolicy | None, model_id: str, owner: str | None) -> Access:
    """May `tenant` (None: an operator, or tenancy off) use an id owned by `owner`?"""
    if tenant is None or owner == tenant.name:
        return Access.ALLOWED
    if owner is not None:
        return Access.HIDDEN
    return Access.ALLOWED if tenant.allows(model_id) else Access.FORBIDDEN
