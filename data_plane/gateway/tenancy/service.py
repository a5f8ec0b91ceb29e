"""The gateway's tenancy shell: load tenants and keys, and answer the proxy's questions.

Built once per gateway from its settings (`tenants_files`, `tenant_keys_file`); off (every
method a no-op that lets everything through) when neither names anything and no operator
key (`api_keys`) is set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from data_plane.gateway.errors import ModelNotFoundError, UnauthorizedError
from data_plane.gateway.request_fields import RequestFields
from data_plane.gateway.tenancy.errors import PermissionDeniedError, QuotaExceededError
from data_plane.gateway.tenancy.keys import KeyRing, bearer_token, digest, parse_key_file
from data_plane.gateway.tenancy.metrics import TenantMetrics
from data_plane.gateway.tenancy.policy import (
    Access,
    TenantPolicy,
    TenantsError,
    access,
    parse_tenants,
)
from data_plane.gateway.tenancy.quota import QuotaBook
from data_plane.gateway.tenancy.shared_quota import SharedQuotaBook
from data_plane.gateway.tenancy.upstream import rewrite_body

log = logging.getLogger("hoist.gateway.tenancy")

_UNAUTHORIZED = "Missing or invalid API key: send `Authorization: Bearer <key>`."


@dataclass(slots=True, eq=False)
class Caller:
    """Who sent a request: a tenant, or None for an operator key / tenancy off.

    A tenant's caller is made per request and carries its quota ticket once admitted."""

    tenant: TenantPolicy | None = None
    ticket: str | None = None
    """The request's id in the shared quota book; None: counted in this process."""
    admitted: bool = False

    @property
    def name(self) -> str | None:
        return self.tenant.name if self.tenant is not None else None


OPERATOR = Caller()


def load_tenants(paths: list[Path]) -> dict[str, TenantPolicy]:
    documents: list[object] = []
    for path in paths:
        documents.extend(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return parse_tenants(documents)


class Tenancy:
    def __init__(
        self,
        tenants: dict[str, TenantPolicy],
        keys: KeyRing,
        operator_keys: list[str],
        metrics: TenantMetrics,
        *,
        salt: bool = True,
        redis_url: str | None = None,
        redis_timeout_s: float = 0.25,
    ) -> None:
        self.tenants = tenants
        self.keys = keys
        self.metrics = metrics
        self.salt = salt
        self._operator = KeyRing(tuple((digest(k), "") for k in operator_keys))
        self.enabled = bool(tenants or len(keys) or len(self._operator))
        self.quotas = QuotaBook()
        self.shared = (
            SharedQuotaBook(redis_url, self.quotas, metrics=metrics, timeout_s=redis_timeout_s)
            if redis_url
            else None
        )
        unknown = sorted({t for _, t in keys.entries} - tenants.keys())
        if unknown:
            log.warning("keys of undeclared tenants are refused: %s", ", ".join(unknown))

    @classmethod
    def from_files(
        cls,
        tenants_files: list[Path],
        keys_file: Path | None,
        operator_keys: list[str],
        metrics: TenantMetrics,
        *,
        salt: bool = True,
        redis_url: str | None = None,
        redis_timeout_s: float = 0.25,
    ) -> Tenancy:
        try:
            tenants = load_tenants(tenants_files)
            keys = KeyRing()
            if keys_file is not None:
                keys = parse_key_file(keys_file.read_text(encoding="utf-8"), str(keys_file))
        except (OSError, yaml.YAMLError) as exc:
            raise TenantsError(f"cannot read the tenants or their keys: {exc}") from None
        return cls(
            tenants, keys, operator_keys, metrics,
            salt=salt, redis_url=redis_url, redis_timeout_s=redis_timeout_s,
        )  # fmt: skip

    # --- per request ----------------------------------------------------------------------

    def authenticate(self, authorization: bytes) -> Caller:
        """The caller of a request with this `Authorization` value; 401 when unknown."""
        if not self.enabled:
            return OPERATOR
        token = bearer_token(authorization)
        if token is not None:
            if self._operator.lookup(token) is not None:
                return OPERATOR
            name = self.keys.lookup(token)
            tenant = self.tenants.get(name) if name is not None else None
            if tenant is not None:
                return Caller(tenant)
        self.metrics.denied("unauthorized")
        raise UnauthorizedError(_UNAUTHORIZED)

    def may_see(self, caller: Caller, *uses: tuple[str, str | None]) -> bool:
        """Whether `caller` may list or use every (id, owner) of `uses`."""
        return all(access(caller.tenant, i, owner) is Access.ALLOWED for i, owner in uses)

    def authorize(self, caller: Caller, model_id: str, uses: list[tuple[str, str | None]]) -> None:
        """404 when any of `uses` is another tenant's own; 403 when one is not allowed."""
        tenant = caller.tenant
        if tenant is None:
            return
        verdicts = [access(tenant, i, owner) for i, owner in uses]
        if Access.HIDDEN in verdicts:
            self.metrics.denied("not_found", tenant.name)
            raise ModelNotFoundError(model_id)
        if Access.FORBIDDEN in verdicts:
            self.metrics.denied("forbidden", tenant.name)
            raise PermissionDeniedError(
                f"Your API key may not use the model `{model_id}`.", param="model"
            )

    async def prepare(
        self,
        caller: Caller,
        fields: RequestFields,
        body: bytes,
        uses: list[tuple[str, str | None]],
        now: float,
    ) -> tuple[bytes, bool]:
        """Authorize and admit a tenant's request: the body to send up, and whether to
        strip the usage event the gateway asked for (the client did not)."""
        if caller.tenant is None:
            return body, False
        self.authorize(caller, fields.model, uses)
        await self.admit(caller, now)
        want_usage = fields.stream and not fields.include_usage
        if self.salt or want_usage:
            body = rewrite_body(body, caller.tenant.name, salt=self.salt, want_usage=want_usage)
        return body, want_usage

    async def admit(self, caller: Caller, now: float) -> None:
        tenant = caller.tenant
        if tenant is None:
            return
        if self.shared is not None:
            caller.ticket = self.shared.new_id()
            refusal, shared = await self.shared.admit(tenant, caller.ticket, now)
            if not shared:
                caller.ticket = None
        else:
            refusal = self.quotas.admit(tenant, now)
        if refusal is not None:
            self.metrics.throttled(tenant.name, refusal.reason)
            raise QuotaExceededError(
                f"Your tenant is over its {refusal.reason.replace('_', ' ')} quota; "
                "retry after the time in Retry-After.",
                retry_after_s=refusal.retry_after_s,
            )
        caller.admitted = True
        self.metrics.admitted(tenant.name)

    async def finish(self, caller: Caller, tokens: int, now: float) -> None:
        tenant = caller.tenant
        if tenant is None or not caller.admitted:
            return
        caller.admitted = False
        if self.shared is not None and caller.ticket is not None:
            await self.shared.finish(tenant.name, caller.ticket, tokens, now)
        else:
            self.quotas.finish(tenant.name, tokens, now)
        self.metrics.tokens(tenant.name, tokens)

    def replace(self, tenants: dict[str, TenantPolicy], keys: KeyRing) -> None:
        """Adopt new tenants and keys (Kubernetes: re-read on every discovery interval)."""
        self.tenants = tenants
        self.keys = keys
        self.enabled = bool(tenants or len(keys) or len(self._operator))

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
