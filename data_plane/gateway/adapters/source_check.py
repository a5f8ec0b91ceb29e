"""The adapter API's check of a `source` (422 naming the field), for the caller's tenant.

The rules and the resolution are `control_plane.api.source_check`'s, shared with the LoRA
manager; the sidecar checks again when it fetches, against the address it connects to.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from control_plane.api.adapter_sources import AdapterSourcePolicy, SourceRefusedError
from control_plane.api.source_check import Resolver, check_resolved, snake_case, system_resolver
from data_plane.gateway.errors import GatewayError
from data_plane.gateway.tenancy.policy import TenantPolicy


class SourceNotAllowedError(GatewayError):
    status = 422
    type = "invalid_request_error"
    code = "source_not_allowed"


class SourceChecker:
    def __init__(
        self,
        policy: AdapterSourcePolicy,
        install_dirs: list[str],
        resolver: Resolver = system_resolver,
    ) -> None:
        self.policy = policy
        self.forbidden = [PurePosixPath(d) for d in install_dirs]
        self.resolver = resolver

    def policy_for(self, tenant: TenantPolicy | None) -> AdapterSourcePolicy:
        if tenant is not None and tenant.adapter_sources is not None:
            return tenant.adapter_sources
        return self.policy

    async def check(self, source: str, tenant: TenantPolicy | None, *, param: str) -> None:
        """422 naming `param` when the policy refuses `source` for `tenant`."""
        try:
            await check_resolved(
                source,
                self.policy_for(tenant),
                tenant=tenant.name if tenant is not None else None,
                forbidden=self.forbidden,
                resolver=self.resolver,
            )
        except SourceRefusedError as refused:
            raise SourceNotAllowedError(
                f"The adapter source is not allowed: {refused.message}.",
                param=param,
                code=snake_case(refused.reason),
            ) from None
