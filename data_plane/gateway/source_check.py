"""The adapter API's check of a `source` against the policy, names resolved (I/O shell).

The pure rules are `control_plane.api.adapter_sources`; this adds what needs the network:
a host name is resolved (bounded in time) and every address it resolves to must be public
unless the operator lists the host. The sidecar checks again when it fetches, against the
address it connects to, so a name that resolves differently later gains nothing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    RemoteUrl,
    SourceRefusedError,
    check_addresses,
    check_source,
    host_allowed,
    is_ip_literal,
)
from data_plane.gateway.errors import GatewayError
from data_plane.gateway.tenancy.policy import TenantPolicy

Resolver = Callable[[str], Awaitable[list[str]]]
"""A host name -> the addresses it resolves to (empty when it does not resolve)."""

RESOLVE_TIMEOUT_S = 3.0


class SourceNotAllowedError(GatewayError):
    status = 422
    type = "invalid_request_error"
    code = "source_not_allowed"


async def system_resolver(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


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
        policy = self.policy_for(tenant)
        name = tenant.name if tenant is not None else None
        try:
            checked = check_source(source, policy, tenant=name, forbidden=self.forbidden)
            host = checked.host if isinstance(checked, RemoteUrl) else ""
            if host and not is_ip_literal(host) and not host_allowed(host, policy.allowed_hosts):
                try:
                    async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                        addresses = await self.resolver(host)
                except TimeoutError:
                    addresses = []
                check_addresses(host, addresses, policy)
        except SourceRefusedError as refused:
            raise SourceNotAllowedError(
                f"The adapter source is not allowed: {refused.message}.",
                param=param,
                code=_code(refused.reason),
            ) from None


def _code(reason: str) -> str:
    """`PathNotAllowed` -> `path_not_allowed` (OpenAI's codes are snake_case)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in reason).lstrip("_")
